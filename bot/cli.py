"""The `muse` command: everything of `genmodels.cli`, plus the Discord side.

    muse run  [--config FILE]              connect to Discord and serve (token from $DISCORD_TOKEN)
    muse sync [--config FILE] [--guild ID] register the slash commands globally (slow), or in one guild (instant)
    muse bench serve [--requests N] [--json]   the offline serving benchmark (fake Discord on loopback)

Point the ``muse`` entry point at ``bot.cli:main``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys

from genmodels import cli as core_cli

from .app import GuildSyncError, guild_sync_error
from .logs import configure_logging

log = logging.getLogger("muse")

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

    from .app import create_bot
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

    from .app import create_bot

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


def cmd_bench(args) -> int:
    if args.what == "serve":
        from bench.serve import run as bench_serve

        result = bench_serve(requests=args.requests, count=args.count, models=args.models)
        print(json.dumps(result, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
        return 0
    return core_cli.cmd_bench(args)


def build_parser() -> argparse.ArgumentParser:
    p = core_cli.build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))

    sp = sub.add_parser("run", help="connect to Discord and serve (token from $DISCORD_TOKEN)")
    sp.add_argument("--config", help="a settings file (default: $MUSE_CONFIG, else ./muse.toml if present)")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("sync", help="register the slash commands globally, or in one guild with --guild")
    sp.add_argument("--config", help="a settings file")
    sp.add_argument("--guild", type=int, help="a guild id: sync there only (instant)")
    sp.set_defaults(func=cmd_sync)

    bench = sub.choices["bench"]
    for action in bench._actions:
        if action.dest == "what":
            action.choices = [*action.choices, "serve"]
    bench.add_argument("--requests", type=int, default=64, help="serve: concurrent /image interactions")
    bench.add_argument("--count", type=int, default=4, help="serve: images per request")
    bench.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    from .settings import SettingsError

    configure_logging(os.environ.get("MUSE_LOG_LEVEL", "INFO").upper())
    return core_cli.run_cli(build_parser(), argv, user_errors=(SettingsError,))


if __name__ == "__main__":
    sys.exit(main())
