"""[web]: where the pages are served and how members log in. The secrets come from the environment only."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

CLIENT_SECRET_ENV = "DISCORD_CLIENT_SECRET"  # the Discord application's OAuth2 client secret
SESSION_SECRET_ENV = "MUSE_WEB_SECRET"  # 32 bytes, url-safe base64: the key that seals the session cookies
MAKE_SECRET = ("python -c 'import secrets, base64; "
               "print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())'")


@dataclass
class WebConfig:
    enabled: bool = False  # true: the bot serves the pages too (`muse web` serves them alone either way)
    host: str = "127.0.0.1"  # the address to listen on (0.0.0.0: every interface)
    port: int = 8080
    base_url: str = ""  # the address members open, e.g. https://muse.example.org; "" = http://host:port
    client_id: int = 0  # the Discord application's id, for "Log in with Discord" (0: no login yet)
    page_size: int = 48  # results per gallery page
    session_hours: float = 24.0  # a login lasts this long
    requests_per_minute: int = 120  # per member (or per address before login); more get 429

    def url(self) -> str:
        """The address the pages are reached at, without a trailing slash."""
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")

    def redirect_uri(self) -> str:
        """Where Discord sends a member back after login: add it to the application's OAuth2 redirects."""
        return f"{self.url()}/oauth/callback"


def client_secret() -> str | None:
    return os.environ.get(CLIENT_SECRET_ENV) or None


def session_key() -> tuple[bytes, bool]:
    """The cookie sealing key: from ``$MUSE_WEB_SECRET``, or made at random (then logins end when Muse restarts).
    Returns (key, whether it came from the environment)."""
    text = os.environ.get(SESSION_SECRET_ENV, "")
    if text:
        key = base64.urlsafe_b64decode(text.encode() + b"=" * (-len(text) % 4))
        if len(key) != 32:
            raise ValueError(f"${SESSION_SECRET_ENV} must be 32 bytes in url-safe base64: make one with {MAKE_SECRET}")
        return key, True
    return os.urandom(32), False
