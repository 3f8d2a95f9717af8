"""Muse's web pages: every server's gallery and its results, behind "Log in with Discord".

A library with no Discord gateway in it: it reads the store (`genmodels.feedback.store`) and draws results with
the engine (`genmodels.engine`), and speaks to Discord only over OAuth2 (`web.oauth`). The bot serves it on its
own event loop (`bot/ext/web/`), and `muse web` serves it alone from the database. `web.app.create_app` builds
the aiohttp application; docs/WEB.md says what each page shows and who may see it.
"""

from .app import create_app
from .config import WebConfig

__all__ = ["WebConfig", "create_app"]
