"""The features of the Discord bot, one package each, loaded by `bot.app.INITIAL_EXTENSIONS`."""
