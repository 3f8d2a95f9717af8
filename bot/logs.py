"""Logging for Muse: one configuration for `muse`, and a filter that keeps secrets out of every log line.

discord.py logs request URLs and gateway events at DEBUG. Interaction and webhook tokens are part of those URLs
(``/interactions/<id>/<token>/callback``, ``/webhooks/<application>/<token>``) and of the events (``"token":``);
anyone holding one can answer as the bot for 15 minutes. `RedactSecrets` replaces them, and the bot token
itself wherever it might appear, with ``[token]``: in the message, its arguments and its traceback.

`configure_logging` installs the filter on the root handlers (what `muse` writes), and `protect_library_loggers`
puts it on discord.py's own loggers, so a program embedding `create_bot` with its own handlers is covered too.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import TextIO

REDACTED = "[token]"
_URL_TOKEN = re.compile(r"(/(?:interactions|webhooks)/\d+/)[^/\s?'\"]+")
_FIELD_TOKEN = re.compile(r"""(['"]token['"]\s*:\s*['"])[^'"]+""")
# discord.py's loggers that can carry a token at some level
LIBRARY_LOGGERS = ("discord.http", "discord.webhook.async_", "discord.webhook.sync", "discord.gateway",
                   "discord.interactions", "discord.state", "discord.client")


def redact(text: str) -> str:
    text = _URL_TOKEN.sub(lambda m: m.group(1) + REDACTED, text)
    text = _FIELD_TOKEN.sub(lambda m: m.group(1) + REDACTED, text)
    secret = (os.environ.get("DISCORD_TOKEN") or "").strip()
    if secret:
        text = text.replace(secret, REDACTED)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record whose text holds a token; never drops a record."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the handler's problem, not ours
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactSecrets()


def protect_library_loggers() -> None:
    """Put the filter on discord.py's loggers (idempotent): their records are clean before any handler sees them."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def configure_logging(level: str | int = "INFO", *, stream: TextIO | None = None) -> None:
    """What `muse` logs: ``level`` (``$MUSE_LOG_LEVEL``) to stderr (or ``stream``), secrets redacted."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=stream or sys.stderr, force=True)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    protect_library_loggers()
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("discord.http").setLevel(logging.WARNING)  # request-level chatter
