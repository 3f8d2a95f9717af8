"""A loopback "fake Discord" for driving the real discord.py offline (tests and ``muse bench serve``).

The real library parses real gateway payloads and serialises real HTTP requests; only the far end is fake:

- `FakeDiscord` is an ``aiohttp.web`` app on 127.0.0.1 with one catch-all route. It records every request
  (method, path, JSON body, multipart files, arrival time) and answers the way Discord does: the interaction
  callback, followups and edits of ``@original`` (with a full Message object, built from what was sent),
  command sync, channel messages, and attachment downloads (files the test put there).
- ``discord.http.Route.BASE`` is pointed at it, which moves every REST and webhook route.
- `Payloads` builds ``INTERACTION_CREATE`` payloads: slash commands (with options, subcommands and resolved
  attachments), autocomplete, context menus, button clicks and modal submits, in a guild or a DM, in any locale,
  with any member permissions. Feed them to ``bot._connection.parse_interaction_create(payload)``.
  It also builds the reaction events (``MESSAGE_REACTION_ADD`` / ``_REMOVE`` / ``_REMOVE_ALL`` /
  ``_REMOVE_EMOJI``, for ``parse_message_reaction_add`` etc.) and a ``GUILD_CREATE`` (`Payloads.guild_create`):
  feed that first, as the gateway does, so reaction adds carry a ``payload.member``.

Nothing here is used by the running bot, and `bot` never imports it: it lives with the benchmarks, which may
import the bot (``muse bench serve`` uses it from an installed package).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import discord
from aiohttp import web

from genmodels import registry

BOT_ID = 1100000000000000001
APP_ID = 1100000000000000002
GUILD_ID = 1100000000000000003
CHANNEL_ID = 1100000000000000004
DM_CHANNEL_ID = 1100000000000000005
USER_ID = 1100000000000000006
ALL_PERMISSIONS = str((1 << 50) - 1)
_UNIQUE = itertools.count(1)  # shared by every Payloads: ids made in the same millisecond must still differ


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    json: Any
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # part name -> (filename, bytes)
    t: float = field(default_factory=time.perf_counter)
    response: Any = None  # the JSON the fake Discord answered with (a Message object for posts and edits)

    @property
    def interaction_id(self) -> int | None:
        parts = self.path.split("/")
        if "interactions" in parts:
            return int(parts[parts.index("interactions") + 1])
        return None

    @property
    def token(self) -> str | None:
        parts = self.path.split("/")
        if "interactions" in parts:
            return parts[parts.index("interactions") + 2]
        if "webhooks" in parts:
            return parts[parts.index("webhooks") + 2]
        return None


@dataclass
class Fault:
    """An error answer the fake Discord gives in place of the usual one (`FakeDiscord.fail`)."""

    method: str
    path_part: str
    status: int
    code: int
    message: str
    times: int | None
    headers: dict[str, str] | None = None  # extra response headers (a 429's Retry-After, Discord's Via)
    body: Any = None  # the body instead of Discord's {"code", "message"}: a dict (JSON) or text (an HTML page)


def _user(uid: int, name: str, bot: bool = False) -> dict:
    return {"id": str(uid), "username": name, "discriminator": "0", "global_name": name, "avatar": None,
            "bot": bot, "public_flags": 0}


class FakeDiscord:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.assets: dict[str, tuple[str, bytes]] = {}  # path under /assets/ -> (content type, bytes)
        self._ids = itertools.count(1)
        self._originals: dict[str, int] = {}  # interaction token -> id of its @original message
        self._changed = asyncio.Condition()
        self._by_token: dict[str, list[Recorded]] = {}  # interaction token -> its requests, in arrival order
        self._token_events: dict[str, asyncio.Event] = {}  # set when a request for that token arrives
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.old_base = discord.http.Route.BASE
        self.faults: list[Fault] = []  # answers to give instead of the usual ones (see `fail`)
        # Discord's 3 s for acknowledging an interaction, from its snowflake: a callback later than this is
        # answered 404 Unknown interaction (10062). None (the default): callbacks are never too late.
        self.callback_window: float | None = None
        self.threads: dict[int, int] = {}  # threads opened through the fake: id -> parent channel id

    # ---- lifecycle ------------------------------------------------------------------------------------------

    async def start(self) -> "FakeDiscord":
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        discord.http.Route.BASE = f"{self.base}/api/v10"
        return self

    async def stop(self) -> None:
        discord.http.Route.BASE = self.old_base
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, method: str, path_part: str, status: int, code: int = 0, message: str = "fake failure",
             times: int | None = None, *, headers: dict[str, str] | None = None, body: Any = None) -> "Fault":
        """Answer requests of ``method`` whose path contains ``path_part`` with an error, as Discord does (a JSON
        body with ``code`` and ``message``), ``times`` times (None: until removed from ``faults``).

        ``headers`` and ``body`` shape the answer further: a 429 from Discord's API carries ``Via`` (discord.py
        then sleeps its JSON ``retry_after`` and retries by itself), one from Discord's edge (Cloudflare) has no
        ``Via`` and may be an HTML page with only a ``Retry-After`` header (discord.py raises it at once).
        """
        fault = Fault(method.upper(), path_part, status, code, message, times, headers, body)
        self.faults.append(fault)
        return fault

    def rate_limit(self, method: str, path_part: str, retry_after: float, *, edge: bool = True,
                   times: int | None = 1) -> "Fault":
        """A 429 on ``method`` ``path_part``: from Discord's edge (Cloudflare: no ``Via``, an HTML page, a
        ``Retry-After`` header) or, with ``edge=False``, from Discord's API (``Via``, a JSON ``retry_after``)."""
        if edge:
            return self.fail(method, path_part, 429, times=times, headers={"Retry-After": f"{retry_after:g}"},
                             body="<html><head><title>Error 1015</title></head><body>You are being rate limited."
                                  "</body></html>")
        return self.fail(method, path_part, 429, times=times,
                         headers={"Via": "1.1 google", "Retry-After": f"{retry_after:g}",
                                  "X-RateLimit-Scope": "user"},
                         body={"message": "You are being rate limited.", "retry_after": retry_after,
                               "global": False, "code": 0})

    def add_asset(self, name: str, data: bytes, content_type: str = "image/png") -> str:
        self.assets[name] = (content_type, data)
        return f"{self.base}/assets/{name}"

    # ---- waiting --------------------------------------------------------------------------------------------

    async def wait_for(self, pred: Callable[[Recorded], bool], timeout: float = 20.0, count: int = 1) -> list[Recorded]:
        """The first ``count`` recorded requests matching ``pred`` (waiting for them to arrive)."""
        async def _wait():
            async with self._changed:
                while True:
                    hits = [r for r in self.requests if pred(r)]
                    if len(hits) >= count:
                        return hits[:count]
                    await self._changed.wait()

        return await asyncio.wait_for(_wait(), timeout)

    def for_token(self, token: str) -> list[Recorded]:
        return list(self._by_token.get(token, ()))

    async def result_of(self, token: str, timeout: float = 20.0) -> Recorded:
        """The request that delivered the final answer for an interaction: an edit of @original with an embed,
        a followup, or a message (ephemeral or not)."""
        def done(r: Recorded) -> bool:
            if r.token != token or r.method not in ("PATCH", "POST") or not isinstance(r.json, dict):
                return False
            if r.path.endswith("/callback"):
                return r.json.get("type") == 4 or r.json.get("type") == 9  # a direct message, or a modal
            return bool(r.json.get("embeds")) or r.json.get("flags", 0) & 64 or (
                r.method == "POST" and "webhooks" in r.path)

        async def _wait() -> Recorded:
            # Waits on this token alone: with many interactions in flight (the serving benchmark), rescanning
            # every request on every arrival would make the harness itself the bottleneck.
            event = self._token_events.setdefault(token, asyncio.Event())
            seen = 0
            while True:
                event.clear()
                mine = self._by_token.get(token, [])
                for r in mine[seen:]:
                    if done(r):
                        return r
                seen = len(mine)
                await event.wait()

        return await asyncio.wait_for(_wait(), timeout)

    # ---- the server -----------------------------------------------------------------------------------------

    def _message(self, body: dict, channel_id: int | None = None, author: dict | None = None,
                 mid: int | None = None) -> dict:
        mid = mid or discord.utils.time_snowflake(discord.utils.utcnow()) + next(self._ids)
        attachments = []
        for i, a in enumerate(body.get("attachments") or []):
            attachments.append({"id": str(mid + i), "filename": a.get("filename", f"file{i}"), "size": 1,
                                "url": f"{self.base}/assets/{a.get('filename')}",
                                "proxy_url": f"{self.base}/assets/{a.get('filename')}"})
        return {
            "id": str(mid), "channel_id": str(channel_id or CHANNEL_ID), "type": 0,
            "content": body.get("content") or "", "author": author or _user(BOT_ID, "Muse", bot=True),
            "embeds": body.get("embeds") or [], "components": body.get("components") or [],
            "attachments": attachments, "timestamp": discord.utils.utcnow().isoformat(), "edited_timestamp": None,
            "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [], "pinned": False,
            "flags": body.get("flags", 0) or 0, "application_id": str(APP_ID), "webhook_id": str(APP_ID),
        }

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        ctype = request.content_type
        body: Any = None
        files: dict[str, tuple[str, bytes]] = {}
        if ctype.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                data = await part.read()
                if part.name == "payload_json":
                    body = json.loads(data)
                else:
                    files[part.name] = (part.filename or "", bytes(data))
        else:
            raw = await request.read()
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw
        path = request.path
        rec = Recorded(request.method, path, dict(request.query), ctype, body, files)
        answer = self._answer(rec)
        if isinstance(answer, web.Response) and answer.content_type == "application/json" and answer.body:
            rec.response = json.loads(answer.body)  # type: ignore[arg-type]
        token = rec.token
        if token is not None:
            self._by_token.setdefault(token, []).append(rec)
            event = self._token_events.get(token)
            if event is not None:
                event.set()
        async with self._changed:
            self.requests.append(rec)
            self._changed.notify_all()
        return answer

    @staticmethod
    def _json(obj: Any, status: int = 200) -> web.Response:
        # discord.py wants exactly "application/json" (web.json_response adds a charset)
        return web.Response(status=status, body=json.dumps(obj).encode(), headers={"Content-Type": "application/json"})

    def _answer(self, r: Recorded) -> web.StreamResponse:
        p = r.path
        for fault in self.faults:
            if fault.method == r.method and fault.path_part in p and fault.times != 0:
                if fault.times is not None:
                    fault.times -= 1
                if isinstance(fault.body, str):
                    return web.Response(status=fault.status, text=fault.body, content_type="text/html",
                                        headers=fault.headers)
                body = fault.body if fault.body is not None else {"message": fault.message, "code": fault.code}
                return web.Response(status=fault.status, body=json.dumps(body).encode(),
                                    headers={"Content-Type": "application/json", **(fault.headers or {})})
        if p.startswith("/assets/"):
            name = p[len("/assets/"):]
            if name not in self.assets:
                return web.Response(status=404)
            ctype, data = self.assets[name]
            return web.Response(body=data, headers={"Content-Type": ctype})
        if p.endswith("/users/@me"):
            return self._json(_user(BOT_ID, "Muse", bot=True))
        if p.endswith("/oauth2/applications/@me"):
            return self._json({"id": str(APP_ID), "name": "Muse", "description": "", "icon": None,
                               "bot_public": True, "bot_require_code_grant": False, "verify_key": "0" * 64,
                               "owner": _user(USER_ID, "owner"), "flags": 0})
        if p.endswith("/callback"):
            if self.callback_window is not None and r.interaction_id is not None and (
                    discord.utils.utcnow() - discord.utils.snowflake_time(r.interaction_id)).total_seconds() \
                    > self.callback_window:
                return self._json({"message": "Unknown interaction", "code": 10062}, status=404)
            return self._json({"interaction": {"id": str(r.interaction_id), "type": (r.json or {}).get("type", 0)}})
        if "/webhooks/" in p:
            if r.method == "DELETE":
                return web.Response(status=204)
            mid = None
            if p.endswith("/messages/@original"):  # every edit of @original is the same message, as on Discord
                mid = self._originals.setdefault(r.token or "", discord.utils.time_snowflake(discord.utils.utcnow())
                                                 + next(self._ids))
            return self._json(self._message(r.json if isinstance(r.json, dict) else {}, mid=mid))
        if "/users/" in p and r.method == "GET" and p.split("/")[-2] == "users" and p.split("/")[-1].isdigit():
            uid = int(p.split("/")[-1])
            return self._json(_user(uid, f"user{uid % 1000}"))
        if p.endswith("/users/@me/channels") and r.method == "POST":  # open a DM
            rid = int((r.json or {}).get("recipient_id", USER_ID))
            return self._json({"id": str(DM_CHANNEL_ID), "type": 1, "last_message_id": None,
                               "recipients": [_user(rid, f"user{rid % 1000}")]})
        if "/channels/" in p and r.method == "GET" and p.split("/")[-2] == "channels":
            cid = int(p.split("/")[-1])
            return self._json({"id": str(cid), "type": 0, "guild_id": str(GUILD_ID), "name": "muse-reports",
                               "position": 0, "permission_overwrites": [], "nsfw": False, "parent_id": None})
        if "/threads" in p and r.method == "POST":  # a thread, from a message or standalone
            parts = p.split("/")
            parent = int(parts[parts.index("channels") + 1])
            tid = discord.utils.time_snowflake(discord.utils.utcnow()) + next(self._ids)
            self.threads[tid] = parent
            return self._json({"id": str(tid), "type": 11, "guild_id": str(GUILD_ID), "parent_id": str(parent),
                               "owner_id": str(BOT_ID), "name": (r.json or {}).get("name", "thread"),
                               "last_message_id": None, "rate_limit_per_user": 0, "message_count": 0,
                               "member_count": 1, "flags": 0,
                               "thread_metadata": {"archived": False, "auto_archive_duration": 1440, "locked": False,
                                                   "archive_timestamp": discord.utils.utcnow().isoformat()}})
        if "/channels/" in p and "/messages/" in p and r.method == "PATCH":  # an edit of a channel message
            parts = p.split("/")
            return self._json(self._message(r.json if isinstance(r.json, dict) else {}, int(parts[-3]),
                                            mid=int(parts[-1])))
        if "/channels/" in p and "/messages/" in p and r.method == "DELETE":
            return web.Response(status=204)
        if "/commands" in p and r.method == "PUT":
            out = []
            for i, c in enumerate(r.json or []):
                out.append({"description": "", **c, "id": str(APP_ID + 100 + i), "application_id": str(APP_ID), "version": "1",
                            "type": c.get("type", 1)})
            return self._json(out)
        if "/channels/" in p and p.endswith("/messages") and r.method == "POST":
            return self._json(self._message(r.json if isinstance(r.json, dict) else {}, int(p.split("/")[-2])))
        return self._json({"message": "404: Not Found (fake Discord)", "code": 0}, status=404)


class Payloads:
    """INTERACTION_CREATE payloads, shaped like the gateway's."""

    def __init__(self, user_id: int = USER_ID, guild: bool = True, locale: str = "en-US",
                 permissions: str = ALL_PERMISSIONS):
        self.user_id, self.guild, self.locale, self.permissions = user_id, guild, locale, permissions

    def _base(self, itype: int, data: dict, *, guild: bool | None = None, locale: str | None = None,
              user_id: int | None = None, message: dict | None = None, channel_id: int | None = None,
              permissions: str | None = None, app_permissions: str | None = None, bot: bool = False) -> dict:
        """``channel_id``: a guild channel other than the default one; ``permissions`` / ``app_permissions``: the
        member's and the bot's (all by default); ``bot``: the user is a bot."""
        guild = self.guild if guild is None else guild
        uid = user_id or self.user_id
        cid = channel_id or CHANNEL_ID
        # a fresh snowflake per interaction: discord.py computes the token's expiry from it
        iid = discord.utils.time_snowflake(discord.utils.utcnow()) + next(_UNIQUE)
        p = {
            "id": str(iid), "application_id": str(APP_ID), "type": itype, "token": f"tok-{iid}", "version": 1,
            "data": data, "locale": locale or self.locale, "app_permissions": app_permissions or ALL_PERMISSIONS,
            "entitlements": [],
            "attachment_size_limit": 25 * 1024 * 1024, "authorizing_integration_owners": {"0": str(GUILD_ID)},
        }
        user = _user(uid, f"user{uid % 1000}", bot=bot)
        if guild:
            p.update(guild_id=str(GUILD_ID), guild_locale="en-US", channel_id=str(cid), context=0,
                     channel={"id": str(cid), "type": 0, "guild_id": str(GUILD_ID), "name": "muse",
                              "position": 0, "permission_overwrites": [], "nsfw": False, "parent_id": None},
                     member={"user": user, "roles": [], "joined_at": "2025-01-01T00:00:00+00:00", "deaf": False,
                             "mute": False, "permissions": permissions or self.permissions, "flags": 0})
        else:
            p.update(channel_id=str(DM_CHANNEL_ID), context=1, user=user,
                     channel={"id": str(DM_CHANNEL_ID), "type": 1, "recipients": [user]})
        if message is not None:
            p["message"] = message
        return p

    @staticmethod
    def _option(name: str, value: Any) -> dict:
        if isinstance(value, bool):
            typ = 5
        elif isinstance(value, int):
            typ = 4
        elif isinstance(value, float):
            typ = 10
        elif isinstance(value, dict) and "attachment" in value:  # {"attachment": id}
            return {"name": name, "type": 11, "value": str(value["attachment"])}
        else:
            typ = 3
        return {"name": name, "type": typ, "value": value}

    def command(self, name: str, options: dict | None = None, *, sub: str | None = None,
                attachments: list[dict] | None = None, **kw) -> dict:
        """A slash command; ``sub`` names a subcommand, or a group and its subcommand ("model status")."""
        opts = [self._option(k, v) for k, v in (options or {}).items()]
        if sub is not None:
            *groups, leaf = sub.split()
            opts = [{"name": leaf, "type": 1, "options": opts}]
            for group in reversed(groups):
                opts = [{"name": group, "type": 2, "options": opts}]
        data: dict = {"id": str(APP_ID + 7), "name": name, "type": 1, "options": opts}
        if attachments:
            data["resolved"] = {"attachments": {a["id"]: a for a in attachments}}
        return self._base(2, data, **kw)

    def autocomplete(self, name: str, focused: str, value: str, **kw) -> dict:
        data = {"id": str(APP_ID + 7), "name": name, "type": 1,
                "options": [{"name": focused, "type": 3, "value": value, "focused": True}]}
        return self._base(4, data, **kw)

    def message_menu(self, name: str, message: dict, **kw) -> dict:
        data = {"id": str(APP_ID + 8), "name": name, "type": 3, "target_id": message["id"],
                "resolved": {"messages": {message["id"]: message}}}
        return self._base(2, data, **kw)

    def button(self, custom_id: str, message: dict, **kw) -> dict:
        return self._base(3, {"custom_id": custom_id, "component_type": 2}, message=message, **kw)

    def modal_submit(self, modal: dict, values: dict[str, str], **kw) -> dict:
        """Answer a modal the bot sent (the ``data`` of its type-9 callback); ``values`` maps input labels."""
        rows = []
        for comp in modal["components"]:
            inner = comp.get("components") or ([comp["component"]] if "component" in comp else [])
            for c in inner:
                label = c.get("label") or comp.get("label")
                rows.append({"type": comp["type"], "component": {"type": 4, "custom_id": c["custom_id"],
                                                                 "value": values.get(label, "")}}
                            if comp["type"] == 18 else
                            {"type": 1, "components": [{"type": 4, "custom_id": c["custom_id"],
                                                        "value": values.get(label, "")}]})
        return self._base(5, {"custom_id": modal["custom_id"], "components": rows}, **kw)

    # ---- gateway events other than interactions -------------------------------------------------------------

    @staticmethod
    def guild_create(guild_id: int = GUILD_ID) -> dict:
        """A minimal ``GUILD_CREATE`` (for ``parse_guild_create``): puts the guild in discord.py's cache."""
        return {"id": str(guild_id), "name": "Muse test server", "owner_id": str(USER_ID), "unavailable": False,
                "icon": None, "splash": None, "discovery_splash": None, "afk_channel_id": None, "afk_timeout": 300,
                "verification_level": 0, "default_message_notifications": 0, "explicit_content_filter": 0,
                "roles": [{"id": str(guild_id), "name": "@everyone", "permissions": "0", "position": 0, "color": 0,
                           "hoist": False, "managed": False, "mentionable": False, "flags": 0}],
                "emojis": [], "stickers": [], "features": [], "mfa_level": 0, "application_id": None,
                "system_channel_id": None, "system_channel_flags": 0, "rules_channel_id": None,
                "vanity_url_code": None, "description": None, "banner": None, "premium_tier": 0,
                "preferred_locale": "en-US", "public_updates_channel_id": None, "nsfw_level": 0,
                "premium_progress_bar_enabled": False, "member_count": 2, "large": False,
                "joined_at": "2025-01-01T00:00:00+00:00", "members": [], "presences": [], "voice_states": [],
                "threads": [], "stage_instances": [], "guild_scheduled_events": [],
                "channels": [{"id": str(CHANNEL_ID), "type": 0, "name": "muse", "position": 0,
                              "permission_overwrites": [], "nsfw": False, "parent_id": None}]}

    def _reaction(self, message_id: int, emoji: str | dict, user_id: int | None, channel_id: int | None,
                  guild: bool | None) -> dict:
        guild = self.guild if guild is None else guild
        e = emoji if isinstance(emoji, dict) else {"id": None, "name": emoji}
        p = {"user_id": str(user_id or self.user_id), "message_id": str(message_id), "emoji": e, "type": 0,
             "burst": False, "channel_id": str(channel_id or (CHANNEL_ID if guild else DM_CHANNEL_ID))}
        if guild:
            p["guild_id"] = str(GUILD_ID)
        return p

    def reaction_add(self, message_id: int, emoji: str | dict, *, user_id: int | None = None, bot: bool = False,
                     channel_id: int | None = None, guild: bool | None = None,
                     author_id: int | None = BOT_ID) -> dict:
        """``MESSAGE_REACTION_ADD``: ``emoji`` is a unicode emoji or a ``{"id", "name"}`` dict (custom emoji);
        in a guild it carries the reacting member, as the gateway sends it."""
        p = self._reaction(message_id, emoji, user_id, channel_id, guild)
        p["burst_colors"] = []
        if author_id is not None:
            p["message_author_id"] = str(author_id)
        if "guild_id" in p:
            uid = int(p["user_id"])
            p["member"] = {"user": _user(uid, f"user{uid % 1000}", bot=bot), "roles": [], "deaf": False, "mute": False,
                           "joined_at": "2025-01-01T00:00:00+00:00", "flags": 0, "avatar": None, "nick": None}
        return p

    def reaction_remove(self, message_id: int, emoji: str | dict, *, user_id: int | None = None,
                        channel_id: int | None = None, guild: bool | None = None) -> dict:
        """``MESSAGE_REACTION_REMOVE``: no member, no author (as on Discord)."""
        return self._reaction(message_id, emoji, user_id, channel_id, guild)

    def reaction_clear(self, message_id: int, *, emoji: str | dict | None = None, guild: bool | None = None) -> dict:
        """``MESSAGE_REACTION_REMOVE_ALL``, or ``MESSAGE_REACTION_REMOVE_EMOJI`` when ``emoji`` is given."""
        p = self._reaction(message_id, emoji or "x", None, None, guild)
        for k in ("user_id", "type", "burst") + (() if emoji else ("emoji",)):
            p.pop(k)
        return p

    @staticmethod
    def attachment(aid: int, filename: str, url: str, size: int, content_type: str | None) -> dict:
        a = {"id": str(aid), "filename": filename, "size": size, "url": url, "proxy_url": url}
        if content_type:
            a["content_type"] = content_type
        return a


async def started_bot(settings, *, engine=None, preload=registry.NAMES, **kw):
    """A logged-in bot (no gateway) wired to the fake Discord that ``Route.BASE`` points at.

    ``kw`` goes to `create_bot` (``store=``, ``trainer=``, ``feedback=``). A bot on the fake Discord never writes
    to the default ``./muse.sqlite3``, which is a real bot's database: unless the settings name another
    ``[database] path``, it gets a throwaway database in a temporary folder (removed with the bot).
    """
    from bot.app import create_bot
    from bot.settings import DatabaseSettings

    scratch = None
    if settings.database.path == DatabaseSettings().path and kw.get("store") is None:
        scratch = tempfile.TemporaryDirectory(prefix="muse-fake-db-")
        settings = dataclasses.replace(settings, database=DatabaseSettings(path=f"{scratch.name}/muse.sqlite3"))
    bot = create_bot(settings, engine=engine, preload=preload, **kw)
    bot._scratch_db = scratch  # type: ignore[attr-defined]  # the folder lives as long as the bot
    try:
        await bot.login("fake-token")
    except BaseException:
        # setup_hook failed half-way: close what it opened (the engine's threads, the store's connection
        # thread), or the interpreter would wait for them forever instead of reporting the failure
        await bot.close()
        if scratch is not None:
            scratch.cleanup()
        raise
    return bot
