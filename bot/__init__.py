"""Muse on Discord: ``create_bot()`` builds the bot without connecting; ``muse run`` connects it."""

from __future__ import annotations


def create_bot(settings=None, **kw):
    from .app import create_bot as _create

    return _create(settings, **kw)


__all__ = ["create_bot"]
