"""The aiohttp application: login with Discord, the servers a member shares with Muse, each server's gallery, and a
page per result with its file drawn again from the stored latents.

    GET  /                      the front page: log in, or the member's servers (or how to set up login)
    GET  /login                 to Discord's consent page, with a fresh ``state``
    GET  /oauth/callback        back from Discord: the state checked, the member and their servers read
    POST /logout                the session ended (a form with the CSRF token)
    GET  /s/{guild}             a server's gallery: ?kind=all|image|morph|poem&sort=new|top&period=week|month|all&page=N
    GET  /r/{result}            one result: large, its seed, parameters, model version, command, parents and children
    GET  /r/{result}/file       its picture (PNG grid, 4× crisp) or morph (GIF), drawn by the engine, cached
    GET  /session/{session}     a group session: every round's candidates (tallies once closed), the winner's line
                                of descent, and who voted for it

Who sees what: nothing without a login, but for the galleries a server's managers made public (``/muse web
public:true``: the gallery, its results and its sessions, without the voters' names). A member sees the servers
they are in that Muse has results in (the bot's own servers when it runs in the bot), and only those servers'
galleries and results; a result of another server is "not found", the same page as one that does not exist. The
session is a sealed cookie (``aiohttp_session``'s EncryptedCookieStorage, Fernet) holding the member's id, name,
their shared servers and a CSRF token that every form carries. Bad input (unknown ids, a page past the end, a
filter that is not one) is a page that says what to fix, with its status code; an unexpected error is a 500 page
with an id, the traceback in the log. Queries are the store's, with bound parameters only. The pages speak English
or 简体中文, after the browser's ``Accept-Language`` (`web.i18n`).
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import get_session, new_session, session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from genmodels import breeding, media, registry
from genmodels.engine import EngineBusy
from genmodels.feedback.store import ACTIVE_STATUSES as ACTIVE

from .config import WebConfig
from .i18n import language_of, text
from .oauth import DiscordOAuth, OAuthError

log = logging.getLogger("muse.web")

HERE = Path(__file__).resolve().parent
KINDS = ("all", "image", "morph", "poem")  # the gallery's kind filter ("poem" includes poem-to-poem morphs)
SORTS = ("new", "top")
PERIODS = {"week": 7 * 86400, "month": 30 * 86400, "all": None}
MAX_PAGE = 10_000
CELL_PX = 256  # a 64 px image shown at 4×, nearest neighbour
FILE_CACHE = 256  # drawn files kept in memory
MAX_VISITORS = 10_000  # members and addresses the rate limit remembers before it forgets the quiet ones
DRAWING = 2  # pictures drawn at once, as the engine's user "web" (under its per-user cap)


@dataclass
class Deps:
    """What the pages read: the store, the engine that draws files (None: no pictures), the servers Muse is in."""

    store: Any
    config: WebConfig
    oauth: DiscordOAuth | None = None
    engine: Any = None
    known_guilds: Callable[[], Awaitable[set[int]]] | None = None  # default: the servers with results stored
    files: collections.OrderedDict = field(default_factory=collections.OrderedDict)
    drawing: asyncio.Semaphore | None = None  # the pictures drawn at once (the engine caps each user's requests)
    hits: dict = field(default_factory=lambda: collections.defaultdict(collections.deque))


DEPS = web.AppKey("deps", Deps)


def create_app(store, config: WebConfig, *, session_key: bytes, oauth: DiscordOAuth | None = None, engine=None,
               known_guilds: Callable[[], Awaitable[set[int]]] | None = None) -> web.Application:
    """The pages over ``store`` (and ``engine`` for the pictures). ``session_key``: 32 bytes that seal cookies."""
    storage = EncryptedCookieStorage(session_key, cookie_name="muse_session", max_age=int(config.session_hours * 3600),
                                     httponly=True, samesite="Lax", secure=config.url().startswith("https://"))
    # the session outermost, so that every page, error pages included, knows who asks
    app = web.Application(middlewares=[session_middleware(storage), _errors, _rate_limit], client_max_size=64 * 1024)
    app[DEPS] = Deps(store, config, oauth, engine, known_guilds)
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                               context_processors=[_context])
    env.filters["when"] = lambda ts: time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts)) if ts else ""
    app.router.add_get("/", front)
    app.router.add_get("/login", login)
    app.router.add_get("/oauth/callback", callback)
    app.router.add_post("/logout", logout)
    app.router.add_get("/s/{guild}", gallery)
    app.router.add_get("/r/{result}", result_page)
    app.router.add_get("/r/{result}/file", result_file)
    app.router.add_get("/session/{session}", session_page)
    app.router.add_static("/static", HERE / "static", append_version=True)
    app.router.add_get("/favicon.ico", _favicon)
    return app


async def _favicon(request: web.Request) -> web.Response:
    raise web.HTTPFound("/static/muse.svg")


# ---- sessions, members, CSRF ---------------------------------------------------------------------------------

def _lang(request: web.Request) -> str:
    return language_of(request.headers.get("Accept-Language"))


async def _context(request: web.Request) -> dict:
    session = await get_session(request)
    lang = _lang(request)
    return {"member": _member(session), "csrf": session.get("csrf", ""), "config": request.app[DEPS].config,
            "lang": lang, "t": lambda key, **values: text(lang, key, **values)}


def _member(session) -> dict | None:
    """The logged-in member (id, name, guilds), or None. An expired login never gets here: the storage refuses a
    cookie sealed longer ago than ``max_age`` and starts an empty session."""
    return session.get("member")


def _guild_of(member: dict, guild_id: int) -> dict | None:
    return member["guilds"].get(str(guild_id))


async def _visible_guild(request: web.Request, guild_id: int) -> dict | None:
    """The server as the visitor may see it: one of the member's servers, or a server whose managers made its
    gallery public (``/muse web public:true``), for anyone; else None."""
    member = _member(await get_session(request))
    if member is not None and (guild := _guild_of(member, guild_id)) is not None:
        return guild
    name = await request.app[DEPS].store.web_public(guild_id)
    return {"name": name, "manage": False, "public": True} if name is not None else None


async def _not_visible(request: web.Request, status: int, key: str, **values) -> _Page:
    """The page for a server, result or session the visitor may not see: a login first when there is none."""
    if _member(await get_session(request)) is None:
        return _page(401, "login_needed")
    return _page(status, key, **values)


async def _check_csrf(request: web.Request) -> None:
    session = await get_session(request)
    form = await request.post()
    sent, want = str(form.get("csrf", "")), str(session.get("csrf", ""))
    if not want or not hmac.compare_digest(sent, want):
        raise _page(403, "csrf")


# ---- pages ------------------------------------------------------------------------------------------------------

async def front(request: web.Request) -> web.Response:
    deps: Deps = request.app[DEPS]
    session = await get_session(request)
    member = _member(session)
    servers = []
    if member is not None:
        servers = sorted(({"id": int(g), **info} for g, info in member["guilds"].items()), key=lambda s: s["name"])
    return aiohttp_jinja2.render_template("front.html", request, {
        "servers": servers, "login_ready": deps.oauth is not None, "redirect_uri": deps.config.redirect_uri()})


async def login(request: web.Request) -> web.Response:
    deps: Deps = request.app[DEPS]
    if deps.oauth is None:
        raise _page(503, "login_off", redirect_uri=deps.config.redirect_uri())
    session = await new_session(request)
    state = secrets.token_urlsafe(24)
    session["state"] = state
    raise web.HTTPFound(deps.oauth.authorize_url(state))


async def callback(request: web.Request) -> web.Response:
    deps: Deps = request.app[DEPS]
    if deps.oauth is None:
        raise _page(503, "login_off", redirect_uri=deps.config.redirect_uri())
    session = await get_session(request)
    state, want = request.query.get("state", ""), session.get("state", "")
    if not want or not hmac.compare_digest(state, want):
        raise _page(400, "bad_state")
    if "error" in request.query:  # the member pressed Cancel on Discord's page
        raise _page(400, "login_cancelled")
    code = request.query.get("code", "")
    if not code or len(code) > 200:
        raise _page(400, "bad_state")
    try:
        member = await deps.oauth.member(code)
    except OAuthError as e:
        raise _page(502, "oauth_failed", detail=str(e)) from None
    known = await (deps.known_guilds() if deps.known_guilds is not None else _stored_guilds(deps.store))
    shared = {str(g): info for g, info in member.guilds.items() if g in known}
    session = await new_session(request)  # a fresh session: nothing from before the login carries over
    session["member"] = {"id": str(member.id), "name": member.name, "guilds": shared}
    session["csrf"] = secrets.token_urlsafe(24)
    log.info("member %d logged in (%d shared servers)", member.id, len(shared))
    raise web.HTTPFound("/")


async def _stored_guilds(store) -> set[int]:
    return set(await store.guilds())


async def logout(request: web.Request) -> web.Response:
    await _check_csrf(request)
    session = await get_session(request)
    session.invalidate()
    raise web.HTTPFound("/")


def _choice(request: web.Request, name: str, allowed, default: str) -> str:
    value = request.query.get(name, default)
    if value not in allowed:
        raise _page(400, "bad_filter", name=name, value=value[:40], allowed=", ".join(allowed))
    return value


def _int(text: str, name: str, low: int = 1, high: int = 2**63 - 1) -> int:
    """A whole number from the URL: a bad page number is the member's to fix (400), a bad id is "not found"."""
    if not text.isdigit() or not low <= int(text) <= high:
        raise _page(400 if name == "page" else 404, "bad_number" if name == "page" else "not_found", name=name,
                    low=low, high=high)
    return int(text)


async def gallery(request: web.Request) -> web.Response:
    deps: Deps = request.app[DEPS]
    guild_id = _int(request.match_info["guild"], "server")
    guild = await _visible_guild(request, guild_id)
    if guild is None:
        raise await _not_visible(request, 403, "not_your_server")
    kind = _choice(request, "kind", KINDS, "all")
    sort = _choice(request, "sort", SORTS, "new")
    period = _choice(request, "period", tuple(PERIODS), "all")
    page = _int(request.query.get("page", "1"), "page", 1, MAX_PAGE)
    size = deps.config.page_size
    since = time.time() - PERIODS[period] if PERIODS[period] else 0.0
    kinds = None if kind == "all" else ("poem", "morph-poem") if kind == "poem" else (kind,)  # poem morphs: poems
    rows, total = await deps.store.gallery(guild_id, kinds=kinds, order=sort, since=since, limit=size,
                                           offset=(page - 1) * size)
    pages = max(1, -(-total // size))
    if page > pages:
        raise _page(404, "past_the_end", page=page, pages=pages)
    cards = [_card(r, likes, dislikes) for r, likes, dislikes in rows]
    sessions = await deps.store.sessions_of(guild_id) if page == 1 else []
    return aiohttp_jinja2.render_template("gallery.html", request, {
        "sessions": [{"id": s.id, "kind": s.kind, "theme": s.params.get("theme"), "rounds": s.rounds,
                      "status": s.status, "created_at": s.created_at} for s in sessions],
        "guild": {"id": guild_id, **guild}, "cards": cards, "kind": kind, "sort": sort, "period": period,
        "page": page, "pages": pages, "total": total, "kinds": KINDS, "sorts": SORTS, "periods": tuple(PERIODS)})


async def _visible_result(request: web.Request):
    """The result in the URL and its server, if the visitor may see it (`_visible_guild`); else 404 (401 before a
    login), the same for one that does not exist."""
    deps: Deps = request.app[DEPS]
    result_id = _int(request.match_info["result"], "result")
    row = await deps.store.get_result(result_id=result_id)
    guild = await _visible_guild(request, row.guild_id) if row is not None and row.guild_id is not None else None
    if guild is None:
        raise await _not_visible(request, 404, "not_found", name="result")
    return row, guild


async def result_page(request: web.Request) -> web.Response:
    deps: Deps = request.app[DEPS]
    row, guild = await _visible_result(request)
    likes, dislikes = await deps.store.votes_on(row.id)
    parents = [p for p in [await deps.store.get_result(result_id=int(i)) for i in row.parents] if p is not None]
    children = await deps.store.children(row.id)
    link = (f"https://discord.com/channels/{row.guild_id}/{row.channel_id}/{row.message_id}"
            if row.message_id and row.channel_id else None)
    return aiohttp_jinja2.render_template("result.html", request, {
        "card": _card(row, likes, dislikes), "guild": {"id": row.guild_id, **guild}, "params": _shown(row.params),
        "command": _command(row), "parents": [_card(p, 0, 0) for p in parents if p.guild_id == row.guild_id],
        "children": [_card(c, 0, 0) for c in children if c.guild_id == row.guild_id], "discord_link": link})


async def result_file(request: web.Request) -> web.Response:
    deps: Deps = request.app[DEPS]
    row, _ = await _visible_result(request)
    if row.kind not in ("image", "morph") or row.latent is None:
        raise _page(404, "not_found", name="file")
    cached = deps.files.get(row.id)
    if cached is None:
        if deps.engine is None:
            raise _page(503, "no_engine")
        if deps.drawing is None:
            deps.drawing = asyncio.Semaphore(DRAWING)
        try:
            async with deps.drawing:  # a gallery asks for dozens at once: they wait here, not in a full queue
                cached = deps.files.get(row.id) or await _draw(deps.engine, row)
        except EngineBusy:
            raise _page(503, "busy") from None
        deps.files[row.id] = cached
        while len(deps.files) > FILE_CACHE:
            deps.files.popitem(last=False)
    else:
        deps.files.move_to_end(row.id)
    body, content_type = cached
    return web.Response(body=body, content_type=content_type, headers={"Cache-Control": "private, max-age=86400"})


async def _draw(engine, row) -> tuple[bytes, str]:
    """The result's file drawn again from its stored latents, by the version that made it (its server's delta or
    the base version), or by the model served now when that version is no longer on disk."""
    base = engine.loaded(row.model)
    if row.lineage == 0 and base is not None and registry.short_tag(base.version) == row.model_version:
        keys = [row.model]  # the base served now made it: no second copy of it
    else:
        keys = [f"{row.model}:{row.lineage}:{row.model_version}", row.model]
    for i, key in enumerate(keys):
        try:
            if row.kind == "image":
                theme = int(row.params.get("theme_index", 0))
                out = await engine.image_from_latents(theme, row.latent, style=row.params.get("style_index"),
                                                      model_key=key, user="web")
                return await asyncio.to_thread(media.grid_png, out.images, CELL_PX), "image/png"
            frames = await engine.run(key, "morph.frames", latents=row.latent, user="web")
            return await asyncio.to_thread(media.morph_gif, frames, CELL_PX), "image/gif"
        except (KeyError, FileNotFoundError, ValueError, RuntimeError) as e:
            if i == len(keys) - 1:
                raise
            log.info("result %d: %s cannot draw it (%s); drawing with the model served now", row.id, key, e)
    raise AssertionError("unreachable")


async def session_page(request: web.Request) -> web.Response:
    deps: Deps = request.app[DEPS]
    session_id = _int(request.match_info["session"], "session")
    s = await deps.store.get_session(session_id)
    guild = await _visible_guild(request, s.guild_id) if s is not None and s.guild_id is not None else None
    if guild is None:
        raise await _not_visible(request, 404, "not_found", name="session")
    rounds = await deps.store.rounds(s.id)
    cands = [await deps.store.candidates(r.id) for r in rounds]
    shown, winner_path, tally = [], [], None
    for r, rc in zip(rounds, cands):
        tally = await deps.store.tally(r.id) if r.status == "closed" else None  # hidden while the round is open
        shown.append({"number": r.number, "status": r.status, "closed_at": r.closed_at,
                      "voters": tally and tally.voters,
                      "candidates": [{"idx": c.idx, "result_id": c.result_id, "content": c.content, "op": c.op,
                                      "votes": tally.votes[c.idx] if tally and c.idx < len(tally.votes) else None}
                                     for c in rc]})
    credits = []
    if s.status not in ACTIVE and rounds and cands[-1]:
        votes = (tally or await deps.store.tally(rounds[-1].id)).votes  # the last round's, counted once
        winner = breeding.session_winner(votes, [c.op for c in cands[-1]])
        if winner is not None:
            path = breeding.line_of_descent([[tuple(c.parents) for c in rc] for rc in cands], winner)
            winner_path = [{"round": rounds[ri].number, "idx": ci, "result_id": cands[ri][ci].result_id,
                            "content": cands[ri][ci].content} for ri, ci in path]
            for step in winner_path:
                shown[step["round"] - 1]["candidates"][step["idx"]]["ancestor"] = True
            credits = await deps.store.lineage_credits([(rounds[ri].id, ci) for ri, ci in path])
    member, lang = _member(await get_session(request)), _lang(request)
    you = int(member["id"]) if member is not None else None
    if guild.get("public"):  # a visitor from outside the server sees how many voted, never who
        credits = [(None, "", n) for _, _, n in credits]
    return aiohttp_jinja2.render_template("session.html", request, {
        "s": s, "guild": {"id": s.guild_id, **guild}, "rounds": shown, "winner": winner_path,
        "credits": [f"{text(lang, 'you') if uid == you and you is not None else (name or text(lang, 'a_member'))} ({n})"
                    for uid, name, n in credits],
        "theme": s.params.get("theme"), "active": s.status in ACTIVE})


def _card(row, likes: int, dislikes: int) -> dict:
    """What a gallery card and a result page show of a result."""
    p = row.params or {}
    title = {"image": p.get("theme"), "morph": " → ".join(
        str((p.get(end) or {}).get("emoji") or "?") for end in ("from", "to")) if p.get("from") else None,
             "poem": p.get("theme"), "morph-poem": None}.get(row.kind)
    return {"id": row.id, "kind": row.kind, "title": title or row.kind, "likes": likes, "dislikes": dislikes,
            "created_at": row.created_at, "content": row.content, "version": f"{row.model}/{row.model_version}"
            if not row.lineage else f"{row.model}:{row.lineage}/{row.model_version}",
            "seed": row.seed, "has_file": row.kind in ("image", "morph") and row.latent is not None}


def _shown(params: dict) -> dict[str, str]:
    """A result's parameters as words: a morph's end ``{"emoji": "🐱", "style": "twemoji"}`` is "🐱 (twemoji)"."""
    out = {}
    for key, value in (params or {}).items():
        if isinstance(value, dict):
            main = value.get("emoji") or value.get("label") or value.get("file") or ""
            rest = [str(v) for k, v in value.items() if k not in ("emoji", "label", "file") and v not in (None, "")]
            value = f"{main} ({', '.join(rest)})" if main and rest else main or ", ".join(rest)
        elif isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value))
        out[key.replace("_", " ")] = str(value)
    return out


def _command(row) -> str | None:
    """The slash command that makes this result again (the same seed and options), where one can."""
    p = row.params or {}
    if row.kind == "image" and row.seed is not None and p.get("theme"):
        style = f" style:{p['style']}" if p.get("style") else ""
        return f"/image theme:{p['theme']} count:{p.get('count', 4)} seed:{row.seed}{style}"
    if row.kind == "poem" and row.seed is not None:
        extra = "".join(f" {k}:{p[k]}" for k in ("theme", "temperature", "form") if p.get(k) not in (None, ""))
        return f"/poem lang:{p.get('lang', registry.get(row.model).lang or 'en')} seed:{row.seed}{extra}"
    return None


# ---- errors and limits -------------------------------------------------------------------------------------------

class _Page(web.HTTPException):
    """An error page: ``status`` and the message ``key`` (error.html says each in words), with its values."""

    def __init__(self, status: int, key: str, **values: Any):
        self.status_code = status
        super().__init__()
        self.key, self.values = key, values


def _page(status: int, key: str, **values: Any) -> _Page:
    return _Page(status, key, **values)


@web.middleware
async def _errors(request: web.Request, handler):
    try:
        return await handler(request)
    except _Page as e:
        return await _error_page(request, e.status_code, e.key, e.values)
    except web.HTTPRedirection:
        raise
    except web.HTTPException as e:  # aiohttp's own: 404 for an unknown path, 405, 413 for an oversized form
        key = {404: "no_such_page", 405: "method", 413: "too_large"}.get(e.status, "http")
        return await _error_page(request, e.status, key, {"reason": e.reason})
    except Exception:  # noqa: BLE001
        error_id = uuid.uuid4().hex[:8]
        log.exception("web page %s failed (error id %s)", request.path, error_id)
        return await _error_page(request, 500, "unexpected", {"error_id": error_id})


async def _error_page(request: web.Request, status: int, key: str, values: dict) -> web.Response:
    """The error page: rendered here, in the outer middlewares, so with the page context made here too."""
    context = await _context(request)
    lang = context["lang"]
    values = dict(values)
    if key == "not_found":
        values["name"] = text(lang, f"name_{values.get('name') or 'page'}")
    if key == "past_the_end":  # "this gallery has 1 page" / "3 pages"
        message = text(lang, "e_past_the_end", n=values["pages"], page=values["page"], pages=values["pages"])
    else:
        message = text(lang, f"e_{key}", **values)
    return aiohttp_jinja2.render_template("error.html", request,
                                          {**context, "key": key, "status": status, "message": message}, status=status)


@web.middleware
async def _rate_limit(request: web.Request, handler):
    """At most ``requests_per_minute`` pages a minute per member (per address before login). Static files and the
    pictures a page shows do not count: a gallery page shows dozens, and drawing them is bounded by the engine's
    queue (a full queue is a 503 that says to reload) and the cache of drawn files."""
    deps: Deps = request.app[DEPS]
    if request.path.startswith("/static/") or request.path == "/favicon.ico" or request.path.endswith("/file"):
        return await handler(request)
    session = await get_session(request)
    who = (session.get("member") or {}).get("id") or request.remote or "?"
    hits, now = deps.hits[who], time.monotonic()
    while hits and hits[0] < now - 60:
        hits.popleft()
    if len(deps.hits) > MAX_VISITORS:  # forget the visitors of more than a minute ago, so the table stays small
        for key in [k for k, q in deps.hits.items() if not q or q[-1] < now - 60]:
            del deps.hits[key]
    if len(hits) >= deps.config.requests_per_minute:
        return await _error_page(request, 429, "slow_down", {"seconds": int(60 - (now - hits[0])) + 1})
    hits.append(now)
    return await handler(request)


__all__ = ["Deps", "create_app"]
