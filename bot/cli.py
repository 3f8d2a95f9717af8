"""The `muse` command: the library's commands (`genmodels.cli`), every installed command plugin, and the Discord side.

    muse run  [--config FILE]              connect to Discord and serve (token from $DISCORD_TOKEN)
    muse sync [--config FILE] [--guild ID] register the slash commands globally (slow), or in one guild (instant)
    muse web  [--config FILE]              serve the web pages alone, from the database (`web/`, docs/WEB.md)

A command plugin is a ``muse.commands`` entry point naming a function like `add_commands`: it adds sub-commands
to the parser's sub-commands. The ``bench`` package declares one (``muse bench train|feedback|serve``); the bot
finds it through the installed package's metadata and never imports ``bench`` itself.

Point the ``muse`` entry point at ``bot.cli:main``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from importlib.metadata import entry_points

from genmodels import cli as core_cli

from .logs import configure_logging

log = logging.getLogger("muse")

PLUGIN_GROUP = "muse.commands"
_FROM_APP = ("GuildSyncError", "guild_sync_error")  # bot.app (discord.py, torch) is imported when a command needs it


def __getattr__(name: str):
    """``bot.cli.GuildSyncError`` and ``guild_sync_error``, from `bot.app`, imported on first use: `muse --help`
    and the library's commands never import discord.py or torch for the Discord side."""
    if name in _FROM_APP:
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

NO_TOKEN = """\
muse: I need a Discord bot token to connect, and $DISCORD_TOKEN is not set. Create an application at
https://discord.com/developers/applications, open its "Bot" page, press "Reset Token" and copy the token,
then run `export DISCORD_TOKEN=...` (or put it in your service's environment) and try `muse run` again.
Keep the token secret: Muse reads it only from the environment and never writes it to a file or a log.
Invite the bot with the scopes `bot` and `applications.commands` (see docs/BOT.md)."""

BAD_TOKEN = """\
muse: Discord refused the token in $DISCORD_TOKEN. It may have been reset or copied incompletely: open your
application's "Bot" page at https://discord.com/developers/applications, press "Reset Token", and set
DISCORD_TOKEN to the new value."""


def _settings(args):
    from .settings import load_settings

    return load_settings(getattr(args, "config", None))


def cmd_run(args) -> int:
    import discord

    from .app import GuildSyncError, create_bot
    from .settings import token_from_env

    token = token_from_env()
    if token is None:
        print(NO_TOKEN, file=sys.stderr)
        return 2
    settings = _settings(args)
    log.info("settings from %s", ", ".join(settings.sources))
    bot = create_bot(settings)
    try:
        bot.run(token, log_handler=None)  # main() configured logging already; the secret is never printed
    except discord.LoginFailure:
        print(BAD_TOKEN, file=sys.stderr)
        return 2
    except GuildSyncError as e:
        print(e, file=sys.stderr)
        return 2
    except discord.PrivilegedIntentsRequired:
        print("muse: Discord refused an intent. Muse needs no privileged intents; check the bot's settings.",
              file=sys.stderr)
        return 2
    return 0


async def sync_commands(settings, token: str, guild: int | None = None) -> int:
    """Log in (no gateway), sync the commands globally or to ``guild``, and return how many were synced."""
    import discord

    from .app import create_bot, guild_sync_error

    bot = create_bot(settings, preload=(), feedback=False)  # syncing needs no database and no trainer
    try:
        await bot.login(token)  # setup_hook registers the commands (and syncs the test guild, if configured)
        if guild:
            target = discord.Object(guild)
            bot.tree.copy_global_to(guild=target)
            try:
                synced = await bot.tree.sync(guild=target)
            except (discord.Forbidden, discord.NotFound) as e:
                raise guild_sync_error(guild, e, "muse sync --guild") from None
        else:
            synced = await bot.tree.sync()
        return len(synced)
    finally:
        await bot.close()


def cmd_sync(args) -> int:
    import discord

    from .app import GuildSyncError
    from .settings import token_from_env

    token = token_from_env()
    if token is None:
        print(NO_TOKEN, file=sys.stderr)
        return 2
    try:
        n = asyncio.run(sync_commands(_settings(args), token, args.guild))
    except discord.LoginFailure:
        print(BAD_TOKEN, file=sys.stderr)
        return 2
    except GuildSyncError as e:
        print(e, file=sys.stderr)
        return 2
    where = f"guild {args.guild} (instant)" if args.guild else "every guild (global; may take up to an hour)"
    print(f"synced {n} commands to {where}")
    return 0


def cmd_web(args) -> int:
    from genmodels.engine import Engine
    from genmodels.feedback.store import FeedbackStore
    from web import server

    settings = _settings(args)
    log.info("settings from %s", ", ".join(settings.sources))
    opener = lambda: FeedbackStore.open(settings.database.path, settings.feedback)  # noqa: E731
    try:
        return asyncio.run(server.serve(settings.web, opener, Engine(settings.engine)))
    except OSError as e:
        print(f"muse: cannot listen on {settings.web.host}:{settings.web.port} ({e.strerror or e}); set [web] port "
              "(or $MUSE_WEB_PORT) to a free one", file=sys.stderr)
        return 2


def add_commands(sub) -> None:
    """Add ``run``, ``sync`` and ``web`` to ``sub`` (what ``ArgumentParser.add_subparsers()`` returned)."""
    sp = sub.add_parser("run", help="connect to Discord and serve (token from $DISCORD_TOKEN)")
    sp.add_argument("--config", help="a settings file (default: $MUSE_CONFIG, else ./muse.toml if present)")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("sync", help="register the slash commands globally, or in one guild with --guild")
    sp.add_argument("--config", help="a settings file")
    sp.add_argument("--guild", type=int, help="a guild id: sync there only (instant)")
    sp.set_defaults(func=cmd_sync)

    sp = sub.add_parser("web", help="serve the web pages alone, from the database ([web] host, port)")
    sp.add_argument("--config", help="a settings file")
    sp.set_defaults(func=cmd_web)


def plugin_commands() -> list[core_cli.CommandHook]:
    """The ``muse.commands`` entry points of the installed packages, by name; one that fails to load is skipped
    with a warning, so a broken plugin never takes ``muse run`` down with it."""
    hooks, seen = [], set()
    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda ep: (ep.name, ep.value)):
        if ep.value in seen:  # one hook declared twice (two installs of the same package)
            continue
        seen.add(ep.value)
        try:
            hooks.append(ep.load())
        except Exception as e:  # noqa: BLE001  (any import-time failure of someone else's package)
            log.warning("skipping the %r commands (%s): %s: %s", ep.name, ep.value, type(e).__name__, e)
    return hooks


def build_parser() -> argparse.ArgumentParser:
    """The whole `muse` parser: the library's commands, then the plugins' (``bench``), then ``run``, ``sync`` and
    ``web``."""
    return core_cli.build_parser(extensions=(*plugin_commands(), add_commands))


def main(argv: list[str] | None = None) -> int:
    configure_logging(os.environ.get("MUSE_LOG_LEVEL", "INFO").upper())
    # bot.settings.SettingsError is a ValueError, which run_cli turns into one line and status 2 already; importing
    # it here would load the engine and torch before the arguments are parsed
    return core_cli.run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
