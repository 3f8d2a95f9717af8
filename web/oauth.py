"""Log in with Discord: OAuth2's authorization-code flow with the ``identify`` and ``guilds`` scopes, by hand.

    authorize_url(state) ──► Discord asks the member ──► /oauth/callback?code&state
    member(code): POST {api}/oauth2/token, then GET {api}/users/@me and {api}/users/@me/guilds

The client secret never leaves this module's requests: it is not logged, and errors name only the step and the
HTTP status. ``api`` and ``authorize`` are parameters so that the tests point them at a fake Discord on
127.0.0.1.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import urlencode

import aiohttp

API = "https://discord.com/api/v10"
AUTHORIZE = "https://discord.com/oauth2/authorize"
SCOPES = "identify guilds"
ADMINISTRATOR, MANAGE_GUILD = 0x8, 0x20  # permission bits

log = logging.getLogger("muse.web.oauth")


class OAuthError(Exception):
    """Discord refused or failed a step of the login; the text is safe to show (no secret, no token)."""


@dataclass
class Member:
    """Who logged in, and the servers they are in: {guild id: {"name", "manage"}} (manage: Manage Server there)."""

    id: int
    name: str
    guilds: dict[int, dict] = field(default_factory=dict)


@dataclass
class DiscordOAuth:
    client_id: int
    client_secret: str
    redirect_uri: str
    api: str = API
    authorize: str = AUTHORIZE
    timeout_s: float = 10.0

    def authorize_url(self, state: str) -> str:
        query = {"client_id": str(self.client_id), "response_type": "code", "redirect_uri": self.redirect_uri,
                 "scope": SCOPES, "state": state, "prompt": "none"}
        return f"{self.authorize}?{urlencode(query)}"

    async def member(self, code: str) -> Member:
        """Trade the callback's ``code`` for a token, and read the member and their servers with it."""
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri}
            auth = aiohttp.BasicAuth(str(self.client_id), self.client_secret)
            token = await self._json(http.post(f"{self.api}/oauth2/token", data=form, auth=auth), "token")
            access = token.get("access_token")
            if not isinstance(access, str) or not access:
                raise OAuthError("Discord's token answer had no access token")
            headers = {"Authorization": f"Bearer {access}"}
            me = await self._json(http.get(f"{self.api}/users/@me", headers=headers), "users/@me")
            guilds = await self._json(http.get(f"{self.api}/users/@me/guilds", headers=headers), "users/@me/guilds")
        try:
            member = Member(int(me["id"]), str(me.get("global_name") or me.get("username") or me["id"]))
            for g in guilds:
                perms = int(g.get("permissions") or 0)
                member.guilds[int(g["id"])] = {
                    "name": str(g.get("name") or g["id"]),
                    "manage": bool(g.get("owner")) or bool(perms & (ADMINISTRATOR | MANAGE_GUILD))}
        except (KeyError, TypeError, ValueError):
            raise OAuthError("Discord's answer about the member was not what Muse expected") from None
        return member

    @staticmethod
    async def _json(request, step: str):
        try:
            async with request as resp:
                if resp.status != 200:
                    log.warning("Discord OAuth2 %s answered HTTP %d", step, resp.status)
                    raise OAuthError(f"Discord refused the login ({step}: HTTP {resp.status})")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as e:
            log.warning("Discord OAuth2 %s failed: %s", step, type(e).__name__)
            raise OAuthError(f"Discord could not be reached ({step}: {type(e).__name__})") from None
        except ValueError:
            raise OAuthError(f"Discord's answer was not JSON ({step})") from None
