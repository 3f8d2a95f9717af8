"""A fake Discord for the web tests: its OAuth2 consent page, token endpoint and the two user endpoints, on
127.0.0.1, with the members the test defines. The consent page redirects at once (the member "authorises")."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from aiohttp import web

MANAGE_GUILD = 0x20


class FakeDiscord:
    """``members``: {code name: {"id", "username", "guilds": [{"id", "name", "permissions", "owner"}]}}. The
    login picks a member by ``login_as`` (set it before the login)."""

    def __init__(self, members: dict, client_id: int, client_secret: str):
        self.members, self.client_id, self.client_secret = members, client_id, client_secret
        self.login_as: str | None = None
        self.codes: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.token_requests: list[dict] = []
        self.app = web.Application()
        self.app.router.add_get("/oauth2/authorize", self.authorize)
        self.app.router.add_post("/api/oauth2/token", self.token)
        self.app.router.add_get("/api/users/@me", self.me)
        self.app.router.add_get("/api/users/@me/guilds", self.guilds)

    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != str(self.client_id) or q.get("scope") != "identify guilds":
            return web.Response(status=400, text="bad authorize request")
        code = secrets.token_hex(8)
        self.codes[code] = self.login_as
        raise web.HTTPFound(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}")

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.token_requests.append({"form": dict(form), "auth": request.headers.get("Authorization", "")})
        import base64

        want = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        who = self.codes.pop(str(form.get("code")), None)
        if request.headers.get("Authorization") != want or who is None:
            return web.json_response({"error": "invalid_grant"}, status=400)
        token = secrets.token_hex(16)
        self.tokens[token] = who
        return web.json_response({"access_token": token, "token_type": "Bearer", "scope": "identify guilds"})

    def _who(self, request: web.Request) -> dict:
        auth = request.headers.get("Authorization", "")
        who = self.tokens.get(auth.removeprefix("Bearer "))
        if who is None:
            raise web.HTTPUnauthorized()
        return self.members[who]

    async def me(self, request: web.Request) -> web.Response:
        m = self._who(request)
        return web.json_response({"id": str(m["id"]), "username": m["username"], "global_name": m["username"]})

    async def guilds(self, request: web.Request) -> web.Response:
        m = self._who(request)
        return web.json_response([{**g, "id": str(g["id"]), "permissions": str(g.get("permissions", 0))}
                                  for g in m["guilds"]])
