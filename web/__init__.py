"""Muse's web pages: every server's gallery and its results, behind "Log in with Discord".

A library with no Discord gateway in it: it reads the store (`genmodels.feedback.store`) and draws results with
the engine (`genmodels.engine`), and speaks to Discord only over OAuth2 (`web.oauth`). The bot serves it on its
own event loop (`bot/ext/web/`), and `muse web` serves it alone from the database. `web.app.create_app` builds
the aiohttp application; docs/WEB.md says what each page shows and who may see it.
"""

from .config import WebConfig

__all__ = ["WebConfig", "create_app"]


def __getattr__(name: str):
    """``web.create_app``, imported on first use: the settings (`bot.settings`) read `WebConfig` without loading
    the pages' libraries (aiohttp-jinja2, aiohttp-session, cryptography)."""
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
