"""The web pages in a real browser: headless Debian chromium (Playwright) against the real aiohttp app, a real SQLite
store with results of two servers, the real engine on the tiny test models drawing the pictures, and a fake
Discord OAuth2 on 127.0.0.1.

Every page's screenshot goes to the test's folder, and to ``$MUSE_WEB_SHOTS`` too when it is set; with
``$MUSE_WEB_MODELS`` the pages draw with that models folder instead of the tiny ones (docs/WEB.md's figures:
``MUSE_WEB_SHOTS=docs/img MUSE_WEB_MODELS=genmodels/weights python -m pytest tests/web/test_pages.py``).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from browser import save_screenshot
from fake_discord import MANAGE_GUILD, FakeDiscord
from server import serve_in_thread
from genmodels.operations import ImageEnd
from web.app import DEPS

CATS, DOGS, ELSEWHERE = 1100000000000000001, 1100000000000000002, 1100000000000000003
ANN, BOB = 4201, 4202
CLIENT_ID, CLIENT_SECRET = 555000, "not-a-real-secret"
MEMBERS = {
    # ann manages Cats and is in a server without Muse; bob is in Dogs only
    "ann": {"id": ANN, "username": "ann", "guilds": [{"id": CATS, "name": "Cats", "permissions": MANAGE_GUILD},
                                                       {"id": ELSEWHERE, "name": "Elsewhere"}]},
    "bob": {"id": BOB, "username": "bob", "guilds": [{"id": DOGS, "name": "Dogs"}]},
}
POEM = "The moon is on the hill,\nAnd the night is still."


def _shot(page, tmp_path: Path, name: str) -> Path:
    path = save_screenshot(page, tmp_path / f"web-{name}.png", full_page=True)
    target = os.environ.get("MUSE_WEB_SHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)
    return path


async def _seed(store, engine) -> dict:
    """Results of Cats (three pictures, a morph and a poem, with votes) and of Dogs (one picture)."""
    ids = {}
    for i, theme in enumerate((0, 1, 2)):
        out = await engine.image(theme, count=4, seed=70 + i)
        ids[f"image{i}"] = await store.record_result(
            kind="image", model="dcgan", model_version=out.version.rsplit("/", 1)[-1], seed=70 + i,
            latent=out.latents.numpy(), params={"theme": out.theme, "theme_index": out.theme_index, "count": 4},
            message_id=1000 + i, channel_id=77, guild_id=CATS, requester_id=ANN)
    for voter in range(3):  # image1 is the most liked, image2 disliked
        await store.add_reaction(1001, 900 + voter, "👍")
    await store.add_reaction(1002, 900, "👎")
    morph = await engine.run("vae", "morph.images", a=ImageEnd("🐱", emoji="🐱"), b=ImageEnd("🐶", emoji="🐶"),
                             frames=6)  # as /interpolate image draws it: its frames' latents are what is stored
    ids["morph"] = await store.record_result(
        kind="morph", model="vae", model_version=morph.version.rsplit("/", 1)[-1], seed=None,
        latent=morph.latents.numpy(),
        params={"from": {"emoji": "🐱"}, "to": {"emoji": "🐶"}, "frames": 6}, message_id=1010, channel_id=77,
        guild_id=CATS, requester_id=ANN, parents=[ids["image0"]])
    ids["poem"] = await store.record_result(
        kind="poem", model="textvae-en", model_version="v0001", seed=5, latent=np.zeros((2, 16), np.float32),
        params={"lang": "en", "temperature": 0.9}, content=POEM, message_id=1020, channel_id=77, guild_id=CATS,
        requester_id=ANN)
    ids["session"] = await _session(store, engine)
    out = await engine.image(0, count=1, seed=9)
    ids["dogs"] = await store.record_result(
        kind="image", model="dcgan", model_version=out.version.rsplit("/", 1)[-1], seed=9,
        latent=out.latents.numpy(), params={"theme": out.theme, "theme_index": out.theme_index, "count": 1},
        message_id=2000, channel_id=88, guild_id=DOGS, requester_id=BOB)
    return ids


async def _session(store, engine) -> int:
    """A finished image session of Cats: round 1 of four fresh candidates, round 2 bred from its two most voted."""
    out = await engine.image(0, count=4, seed=11)
    theme = {"theme": out.theme, "theme_index": 0}
    sid = await store.create_session(guild_id=CATS, channel_id=77, starter_id=ANN, kind="image", model="dcgan",
                                     params=theme, rounds=2, round_seconds=60, candidates=4, seed=1, per_guild_limit=0)
    spec = {"kind": "image", "model": "dcgan", "guild_id": CATS, "channel_id": 77, "params": theme}
    first = out.latents.numpy()
    r1, _ = await store.add_round(sid, 1, deadline=time.time() + 60, model_version="v0001", result=spec,
                                  candidates=[{"idx": i, "op": "fresh", "latent": first[i]} for i in range(4)])
    for user, choice in ((ANN, 2), (BOB, 2), (903, 0)):
        await store.toggle_vote(r1, user, choice, name="ann" if user == ANN else f"m{user}")
    await store.close_round(r1, "deadline")
    second = (await engine.image(0, count=4, seed=12)).latents.numpy()
    r2, _ = await store.add_round(sid, 2, deadline=time.time() + 60, model_version="v0001", result=spec, candidates=[
        {"idx": 0, "op": "elite", "latent": first[2], "parents": [2]},
        *({"idx": i, "op": "cross", "latent": second[i], "parents": [2, 0]} for i in (1, 2, 3))])
    await store.toggle_vote(r2, ANN, 3, name="ann")
    await store.close_round(r2, "deadline")
    await store.end_session(sid, "finished", "all rounds played")
    return sid


@pytest.fixture(scope="module")
def discord_fake():
    fake = FakeDiscord(MEMBERS, CLIENT_ID, CLIENT_SECRET)
    with serve_in_thread(lambda: fake.app) as served:
        fake.url = served.base_url
        yield fake


def _site(tmp_path: Path, models: Path, fake: FakeDiscord | None, **config):
    """The pages over a fresh store and engine, served from a thread; ``ids`` of the seeded results."""
    from genmodels.engine import Engine, EngineConfig
    from genmodels.feedback.store import FeedbackStore
    from web import WebConfig, create_app
    from web.oauth import DiscordOAuth

    cfg = WebConfig(client_id=CLIENT_ID if fake else 0, **config)
    ids: dict = {}

    async def make():
        store = await FeedbackStore.open(tmp_path / "muse.sqlite3")
        engine = Engine(EngineConfig(models_dir=str(models)))
        await engine.start(preload=("image",))
        ids.update(await _seed(store, engine))
        oauth = (DiscordOAuth(CLIENT_ID, CLIENT_SECRET, "", api=f"{fake.url}/api",
                              authorize=f"{fake.url}/oauth2/authorize") if fake else None)
        app = create_app(store, cfg, session_key=os.urandom(32), oauth=oauth, engine=engine)

        async def close(_app):
            await engine.close()
            await store.close()

        app.on_cleanup.append(close)
        return app

    served = serve_in_thread(make)
    return served, cfg, ids


def _started(tmp_path, models, fake, **config):
    cm, cfg, ids = _site(tmp_path, Path(os.environ.get("MUSE_WEB_MODELS") or models), fake, **config)
    served = cm.__enter__()
    cfg.port = served.port  # the address Discord sends members back to
    if fake is not None:
        served.app[DEPS].oauth.redirect_uri = cfg.redirect_uri()
    return cm, served, ids


def _login(page, served, fake, who: str) -> None:
    fake.login_as = who
    page.goto(served.url("/"))
    page.click("a.button:has-text('Log in with Discord')")  # to Discord, which sends the member back to /
    page.locator("button:has-text('Log out')").wait_for()


def test_a_member_logs_in_browses_the_gallery_with_filters_and_opens_a_result(browser_page, tiny_models, tmp_path,
                                                                             discord_fake):
    page = browser_page
    cm, served, ids = _started(tmp_path, tiny_models, discord_fake)
    try:
        page.goto(served.url("/"))
        assert page.locator("a.button", has_text="Log in with Discord").is_visible()
        _shot(page, tmp_path, "login")
        _login(page, served, discord_fake, "ann")
        # only the servers ann shares with Muse: Cats (with results), not Elsewhere (none)
        assert page.locator(".servers li").all_inner_texts() == ["Cats Manage Server"]
        request = discord_fake.token_requests[-1]
        assert request["form"]["grant_type"] == "authorization_code" and request["auth"].startswith("Basic ")

        page.click("text=Cats")
        assert page.locator("h1").inner_text() == "Cats"
        assert page.locator(".count").inner_text() == "13 results"  # 5, and the session's 8 candidates
        cards = page.locator(".grid .card")
        assert cards.count() == 13
        # every picture arrives and is drawn: a 2×2 grid of 64 px cells at 4×
        images = page.locator(".card img")
        for i in range(images.count()):  # lazy images load as they come into view
            images.nth(i).scroll_into_view_if_needed()
        page.wait_for_function("[...document.querySelectorAll('.card img')].every(i => i.complete && i.naturalWidth)")
        sizes = page.eval_on_selector_all(".card img", "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
        assert sorted(sizes) == [[256, 256]] * 9 + [[512, 512]] * 3, sizes  # candidates and the morph, 3 grids
        assert page.locator(".card .poem").inner_text() == POEM
        _shot(page, tmp_path, "gallery")
        page.set_viewport_size({"width": 390, "height": 844})  # a phone: two cards a row, the filters wrap
        columns = page.eval_on_selector(".grid", "g => getComputedStyle(g).gridTemplateColumns.split(' ').length")
        assert columns == 2 and page.evaluate("document.documentElement.scrollWidth") <= 390
        page.evaluate("window.scrollTo(0, 0)")
        save_screenshot(page, tmp_path / "web-gallery-phone.png")
        if os.environ.get("MUSE_WEB_SHOTS"):
            shutil.copy(tmp_path / "web-gallery-phone.png", Path(os.environ["MUSE_WEB_SHOTS"]) / "web-gallery-phone.png")
        page.set_viewport_size({"width": 1024, "height": 768})

        # most liked first, then only poems
        page.select_option("select[name=sort]", "top")
        with page.expect_navigation():
            page.click("text=Show")
        assert page.locator(".card").first.get_attribute("href") == f"/r/{ids['image1']}"
        assert "👍 3" in page.locator(".card").first.inner_text()
        page.select_option("select[name=kind]", "poem")
        with page.expect_navigation():
            page.click("text=Show")
        assert page.locator(".card").count() == 1 and page.url.endswith("kind=poem&sort=top&period=all")

        page.goto(served.url(f"/r/{ids['image0']}"))
        facts = page.locator(".facts").inner_text()
        assert "70" in facts and "/image theme:" in facts and "seed:70" in facts
        assert page.locator("text=Open it in Discord").get_attribute("href") == \
            f"https://discord.com/channels/{CATS}/77/1000"
        assert page.locator("h2", has_text="Made from it").is_visible()  # the morph made from its cell
        page.click(f"a.card[href='/r/{ids['morph']}']")
        assert page.locator("h2", has_text="Made from").is_visible()
        assert "🐱 → 🐶" in page.locator(".large img").get_attribute("alt")
        _shot(page, tmp_path, "result")

        # logging out ends the session: the gallery asks for a login again
        with page.expect_navigation():
            page.click("text=Log out")
        response = page.goto(served.url(f"/s/{CATS}"))
        assert response.status == 401 and "Please log in" in page.locator("h1").inner_text()
    finally:
        cm.__exit__(None, None, None)


def test_other_servers_are_refused_and_a_forged_form_is_refused(browser_page, tiny_models, tmp_path, discord_fake):
    page = browser_page
    cm, served, ids = _started(tmp_path, tiny_models, discord_fake)
    try:
        _login(page, served, discord_fake, "bob")
        assert page.locator(".servers li").all_inner_texts() == ["Dogs"]
        response = page.goto(served.url(f"/s/{CATS}"))
        assert response.status == 403 and "You are not in this server" in page.inner_text("main")
        _shot(page, tmp_path, "refused")
        for path in (f"/r/{ids['image0']}", f"/r/{ids['image0']}/file"):  # another server's result: not found
            response = page.goto(served.url(path))
            assert response.status == 404 and "belongs to a server you are not in" in page.inner_text("main")
        assert page.goto(served.url(f"/r/{ids['dogs']}")).status == 200

        page.goto(served.url("/"))
        page.eval_on_selector("input[name=csrf]", "e => e.value = 'forged'")
        with page.expect_navigation():
            page.click("text=Log out")
        assert "This form is out of date" in page.inner_text("main")
        assert page.goto(served.url(f"/s/{DOGS}")).status == 200  # still logged in: nothing happened
    finally:
        cm.__exit__(None, None, None)


def test_bad_addresses_get_pages_that_say_what_to_fix(browser_page, tiny_models, tmp_path, discord_fake):
    page = browser_page
    cm, served, ids = _started(tmp_path, tiny_models, discord_fake, page_size=2)
    try:
        _login(page, served, discord_fake, "ann")
        cases = [
            (f"/s/{CATS}?page=8", 404, "There is no page 8: this gallery has 7 pages."),
            (f"/s/{CATS}?page=99999999999999999999", 400, "The page must be a whole number from 1 to 10000."),
            (f"/s/{CATS}?page=-1", 400, "The page must be a whole number"),
            (f"/s/{CATS}?kind=video", 400, "“video” is not a kind I know: use one of all, image, morph, poem."),
            (f"/s/{CATS}?sort=' OR 1=1 --", 400, "is not a sort I know"),
            ("/s/not-a-server", 404, "There is no server here that you can see"),
            ("/r/123456789", 404, "There is no result here that you can see"),
            (f"/r/{ids['poem']}/file", 404, "There is no file here"),
            ("/no/such/page", 404, "There is no page at this address."),
        ]
        for path, status, text in cases:
            response = page.goto(served.url(path))
            assert (response.status, text in page.inner_text("main")) == (status, True), (path, page.inner_text("main"))
        assert "Traceback" not in page.content()
        _shot(page, tmp_path, "bad-page")
        # a form far over the size limit: refused before it is read
        csrf = page.eval_on_selector("input[name=csrf]", "e => e.value")
        response = page.request.post(served.url("/logout"), form={"csrf": csrf, "pad": "x" * 200_000})
        assert response.status == 413 and "That form is too large" in response.text()
    finally:
        cm.__exit__(None, None, None)


def test_an_expired_login_asks_to_log_in_again(browser_page, tiny_models, tmp_path, discord_fake):
    page = browser_page
    cm, served, _ = _started(tmp_path, tiny_models, discord_fake, session_hours=2 / 3600)  # a 2-second login
    try:
        _login(page, served, discord_fake, "ann")
        assert page.goto(served.url(f"/s/{CATS}")).status == 200
        time.sleep(3.5)
        response = page.goto(served.url(f"/s/{CATS}"))
        assert response.status == 401 and "log in with discord (again" in page.inner_text("main").lower()
    finally:
        cm.__exit__(None, None, None)


def test_without_login_settings_the_front_page_says_how_to_set_them(browser_page, tiny_models, tmp_path):
    page = browser_page
    cm, served, _ = _started(tmp_path, tiny_models, None)
    try:
        page.goto(served.url("/"))
        text = page.inner_text("main")
        assert "Log in is not set up yet" in text and "DISCORD_CLIENT_SECRET" in text
        assert re.search(r"add the redirect http://127\.0\.0\.1:\d+/oauth/callback", text)
        _shot(page, tmp_path, "setup")
        response = page.goto(served.url("/login"))
        assert response.status == 503 and "the front page says how" in page.inner_text("main")
    finally:
        cm.__exit__(None, None, None)


def test_a_member_past_the_rate_limit_is_asked_to_slow_down(browser_page, tiny_models, tmp_path, discord_fake):
    page = browser_page
    cm, served, _ = _started(tmp_path, tiny_models, discord_fake, requests_per_minute=3)
    try:
        _login(page, served, discord_fake, "bob")  # before: the front page, /login, the callback; after: / (1)
        statuses = [page.goto(served.url(f"/s/{DOGS}")).status for _ in range(3)]
        assert statuses == [200, 200, 429], statuses
        assert re.search(r"Too many requests in a minute\. Try again in \d+ seconds\.", page.inner_text("main"))
    finally:
        cm.__exit__(None, None, None)


def test_a_session_page_shows_its_rounds_tallies_winner_and_credits(browser_page, tiny_models, tmp_path,
                                                                    discord_fake):
    page = browser_page
    cm, served, ids = _started(tmp_path, tiny_models, discord_fake)
    try:
        _login(page, served, discord_fake, "ann")
        page.goto(served.url(f"/s/{CATS}"))
        page.click(f"a[href='/session/{ids['session']}']")
        assert page.locator("h1").inner_text().startswith("An image session on ")
        rounds = page.locator("section.round")
        assert rounds.count() == 2
        assert rounds.nth(0).locator("h2").inner_text() == "Round 1 · 3 voters"
        assert rounds.nth(0).locator(".votes").all_inner_texts() == ["1 vote", "0 votes", "2 votes", "0 votes"]
        # the winner (round 2's #4) and its ancestor (round 1's #3), highlighted where they were voted on
        steps = page.locator(".descent figcaption").all_inner_texts()
        assert steps == ["round 1 · #3", "round 2 · #4"], steps
        assert page.locator(".round .card.ancestor").count() == 2
        assert page.locator(".credits").inner_text() == "Voted for along the way by you (2), m4202 (1)."
        page.wait_for_function("[...document.querySelectorAll('.descent img')].every(i => i.complete && i.naturalWidth)")
        _shot(page, tmp_path, "session")
    finally:
        cm.__exit__(None, None, None)


def test_a_public_gallery_is_seen_without_a_login_but_nothing_else_is(make_page, tiny_models, tmp_path,
                                                                      discord_fake):
    cm, served, ids = _started(tmp_path, tiny_models, discord_fake)
    try:
        store = served.app[DEPS].store
        served.run(store.set_web_public(CATS, True, name="Cats", actor_id=ANN))  # /muse web public:true
        visitor = make_page()
        assert visitor.goto(served.url(f"/s/{CATS}")).status == 200
        assert visitor.locator("h1").inner_text() == "Cats public gallery"
        assert visitor.goto(served.url(f"/r/{ids['image0']}")).status == 200
        assert visitor.goto(served.url(f"/r/{ids['image0']}/file")).headers["content-type"] == "image/png"
        visitor.goto(served.url(f"/session/{ids['session']}"))
        assert visitor.locator(".credits").inner_text() == "Voted for along the way by a member (2), a member (1)."
        _shot(visitor, tmp_path, "public")
        # the other server stays behind the login, for visitors and for members of other servers alike
        assert visitor.goto(served.url(f"/s/{DOGS}")).status == 401
        assert visitor.goto(served.url(f"/r/{ids['dogs']}")).status == 401
        bob = make_page()
        _login(bob, served, discord_fake, "bob")
        assert bob.goto(served.url(f"/s/{CATS}")).status == 200  # public: bob sees it too, without names
        served.run(store.set_web_public(CATS, False, actor_id=ANN))  # /muse web public:false
        assert visitor.goto(served.url(f"/s/{CATS}")).status == 401
        assert visitor.goto(served.url(f"/r/{ids['image0']}")).status == 401
        assert bob.goto(served.url(f"/s/{CATS}")).status == 403
    finally:
        cm.__exit__(None, None, None)


def test_the_pages_speak_chinese_to_a_chinese_browser(make_page, tiny_models, tmp_path, discord_fake):
    cm, served, ids = _started(tmp_path, tiny_models, discord_fake)
    try:
        page = make_page(locale="zh-CN")  # Accept-Language: zh-CN
        page.goto(served.url("/"))
        assert page.locator("html").get_attribute("lang") == "zh-CN"
        assert page.locator("a.button").inner_text() == "用 Discord 登录"
        discord_fake.login_as = "ann"
        page.click("a.button")
        page.locator("button:has-text('退出登录')").wait_for()
        assert page.locator("h1").inner_text() == "你的服务器"
        page.goto(served.url(f"/s/{CATS}?kind=poem"))
        assert page.locator(".count").inner_text() == "1 个作品"
        assert page.locator("select[name=sort] option").all_inner_texts() == ["最新", "最受喜爱"]
        page.goto(served.url(f"/s/{CATS}"))
        _shot(page, tmp_path, "gallery-zh")
        page.goto(served.url(f"/session/{ids['session']}"))
        assert page.locator("section.round h2").first.inner_text() == "第 1 轮 · 3 人投票"
        assert page.locator(".credits").inner_text() == "一路为它投票的有：你 (2), m4202 (1)。"
        response = page.goto(served.url(f"/s/{CATS}?page=99"))
        assert response.status == 404 and "没有第 99 页：这个作品页只有 1 页。" in page.inner_text("main")
    finally:
        cm.__exit__(None, None, None)
