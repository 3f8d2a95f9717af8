"""Offline end-to-end: real INTERACTION_CREATE payloads into discord.py, its HTTP to a loopback fake Discord.

Every test asserts on what would have gone to Discord: callback types, ephemeral flags, embeds, components and
the bytes of the attached files.
"""

from __future__ import annotations

import importlib
import io
import logging
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.fakediscord import BOT_ID, GUILD_ID, Payloads
from genmodels.images import MAX_SEED
from museharness import body, custom_ids, harness, invoke, is_ephemeral, message_from, run


def _png(rec, part="files[0]") -> Image.Image:
    name, data = rec.files[part]
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def _callbacks(fake, token):
    return [r for r in fake.for_token(token) if r.path.endswith("/callback")]


def test_image_defers_first_then_posts_a_crisp_grid_with_provenance(bot_models: Path):
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            gen = bot.engine.loaded("image")
            starts: list[float] = []
            real_render = gen.render

            def observed(z, labels, styles=None):
                starts.append(time.perf_counter())
                return real_render(z, labels, styles)

            gen.render = observed
            p = P.command("image", {"theme": "circles", "count": 4, "seed": 7})
            rec = await invoke(fake, bot, p)
            again = await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 4, "seed": 7}))
            return _callbacks(fake, p["token"]), rec, again, starts

    cbs, rec, again, starts = run(main())
    # the defer (type 5, public) went out before the generator ran
    assert [c.json["type"] for c in cbs] == [5] and not cbs[0].json.get("data", {}).get("flags")
    assert cbs[0].t < starts[0]
    assert rec.method == "PATCH" and rec.path.endswith("/messages/@original")
    im = _png(rec)
    assert im.mode == "RGBA" and im.size == (512, 512)  # 2×2 cells of 256 px
    a = np.asarray(im)
    assert a[..., 3].min() < 255  # the alpha channel survives (not flattened onto a background)
    # nearest-neighbour upscaling: every 4×4 block is one source pixel
    assert (a[::4, ::4] == a[3::4, 3::4]).all()
    embed = rec.json["embeds"][0]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Seed"] == "7" and fields["Theme"] == "circles" and fields["Model"] == "dcgan/v0001"
    assert embed["image"]["url"] == "attachment://muse.png"
    ids = custom_ids(rec.json)
    assert "muse:ir:0:4" in ids and [i for i in ids if i.startswith("muse:iv:")] == [
        f"muse:iv:{c}:0:7.4" for c in range(4)] and "muse:im:0:7.4" in ids
    assert all(len(i) <= 100 for i in ids)
    assert again.files["files[0]"][1] == rec.files["files[0]"][1]  # the same seed gives the same bytes


def test_image_bad_input_gets_ephemeral_fixes(bot_models: Path):
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            out = {}
            for name, opts in {
                "seed": {"theme": "circles", "seed": MAX_SEED + 1},
                "theme": {"theme": "dragons"},
                "count": {"theme": "circles", "count": 9},
            }.items():
                p = P.command("image", opts)
                out[name] = (await invoke(fake, bot, p), _callbacks(fake, p["token"]))
            return out

    out = run(main())
    for name, (rec, cbs) in out.items():
        assert len(cbs) == 1 and cbs[0].json["type"] == 4, name  # answered directly, never deferred
        assert is_ephemeral(rec), name
    assert "0 to 4294967295" in body(out["seed"][0])["content"] and "4294967296" in body(out["seed"][0])["content"]
    assert "dragons" in body(out["theme"][0])["content"] and "circles, squares, triangles" in body(out["theme"][0])["content"]
    assert "between 1 and 4" in body(out["count"][0])["content"]


def test_autocomplete_offers_the_models_themes(bot_models: Path):
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            p = P.autocomplete("image", "theme", "sq")
            bot._connection.parse_interaction_create(p)
            return (await fake.wait_for(lambda r: r.token == p["token"]))[0]

    rec = run(main())
    assert rec.json["type"] == 8
    assert [c["value"] for c in rec.json["data"]["choices"]] == ["squares"]


def test_poem_in_a_dm_and_in_chinese(bot_models: Path):
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            en = await invoke(fake, bot, Payloads(guild=False).command("poem", {"lang": "en", "seed": 5, "theme": "the moon"}))
            en2 = await invoke(fake, bot, Payloads(guild=False).command("poem", {"lang": "en", "seed": 5, "theme": "the moon"}))
            zh = await invoke(fake, bot, Payloads(locale="zh-CN").command("poem", {"seed": 5}))
            return en, en2, zh

    en, en2, zh = run(main())
    e = en.json["embeds"][0]
    assert e["title"] == "📜 A poem" and len(e["description"].splitlines()) == 4
    assert e["description"] == en2.json["embeds"][0]["description"]  # seeded
    fields = {f["name"]: f["value"] for f in e["fields"]}
    assert fields["Theme"] == "the moon" and fields["Seed"] == "5" and fields["Model"] == "textvae-en/v0001"
    assert custom_ids(en.json) == ["muse:pr:en:90", "muse:pv:en:90:5"]
    z = zh.json["embeds"][0]
    assert z["title"] == "📜 一首诗"  # zh-CN reply, and the poem language follows the locale
    assert {f["name"] for f in z["fields"]} >= {"种子", "温度", "模型"}
    assert "textvae-zh/v0001" in z["footer"]["text"]
    assert any("\u4e00" <= c <= "\u9fff" for c in z["description"])


def test_poem_bad_input(bot_models: Path):
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            long = await invoke(fake, bot, P.command("poem", {"lang": "en", "theme": "x" * 201}))
            hot = await invoke(fake, bot, P.command("poem", {"lang": "en", "temperature": 3.0}))
            zh_long = await invoke(fake, bot, Payloads(locale="zh-CN").command("poem", {"theme": "月" * 300}))
            return long, hot, zh_long

    long, hot, zh_long = run(main())
    assert is_ephemeral(long) and "201 characters" in body(long)["content"] and "200" in body(long)["content"]
    assert is_ephemeral(hot) and "temperature" in body(hot)["content"] and "1.5" in body(hot)["content"]
    assert is_ephemeral(zh_long) and "300 个字符" in body(zh_long)["content"]


def _gif_duration(data: bytes) -> int:
    """Total play time in ms (Pillow merges identical neighbouring frames, adding up their durations)."""
    im = Image.open(io.BytesIO(data))
    total = 0
    for i in range(getattr(im, "n_frames", 1)):
        im.seek(i)
        total += im.info["duration"]
    return total


def test_interpolate_image_from_emoji_and_attachment(bot_models: Path):
    buf = io.BytesIO()
    Image.new("RGBA", (40, 30), (200, 30, 30, 255)).save(buf, "PNG")
    red = buf.getvalue()

    async def main():
        async with harness(bot_models) as (fake, bot, P):
            emo = await invoke(fake, bot, P.command("interpolate", {"from": "🐱", "to": "🐶", "frames": 6}, sub="image"))
            url = fake.add_asset("red.png", red)
            att = P.attachment(555, "red.png", url, len(red), "image/png")
            mixed = await invoke(fake, bot, P.command("interpolate", {"from_image": {"attachment": 555}, "to": "🐶",
                                                                      "frames": 3}, sub="image", attachments=[att]))
            return emo, mixed

    emo, mixed = run(main())
    for rec, frames in ((emo, 6), (mixed, 3)):
        assert set(rec.files) == {"files[0]", "files[1]"}
        names = [rec.files[k][0] for k in sorted(rec.files)]
        assert names == ["morph.gif", "strip.png"]
        gif = rec.files["files[0]"][1]
        assert gif[:6] == b"GIF89a" and _gif_duration(gif) == 120 * (2 * frames - 2)  # a ping-pong loop
        strip = _png(rec, "files[1]")
        assert strip.mode == "RGBA" and strip.size == (128 * frames, 128)
    fields = {f["name"]: f["value"] for f in emo.json["embeds"][0]["fields"]}
    assert fields["From"] == "🐱" and fields["To"] == "🐶" and fields["Model"] == "vae/v0001"
    assert {f["name"]: f["value"] for f in mixed.json["embeds"][0]["fields"]}["From"] == "red.png"


def test_interpolate_image_bad_input(bot_models: Path):
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            out = {}
            url = fake.add_asset("junk.png", b"this is not a png at all", "image/png")
            buf = io.BytesIO()
            Image.new("1", (5000, 5000)).save(buf, "PNG")  # a few kB that would unpack to 100 MB of RGBA
            bomb_url = fake.add_asset("bomb.png", buf.getvalue(), "image/png")
            cases = {
                "word": ({"from": "cat", "to": "🐶"}, None),
                "path": ({"from": "/etc/passwd", "to": "🐶"}, None),
                "both": ({"from": "🐱", "from_image": {"attachment": 1}, "to": "🐶"},
                         P.attachment(1, "a.png", url, 10, "image/png")),
                "none": ({"to": "🐶"}, None),
                "text": ({"from_image": {"attachment": 2}, "to": "🐶"}, P.attachment(2, "notes.txt", url, 10, "text/plain")),
                "huge": ({"from_image": {"attachment": 3}, "to": "🐶"},
                         P.attachment(3, "big.png", url, 50 * 1024 * 1024, "image/png")),
                "corrupt": ({"from_image": {"attachment": 4}, "to": "🐶"}, P.attachment(4, "junk.png", url, 24, "image/png")),
                "frames": ({"from": "🐱", "to": "🐶", "frames": 99}, None),
                "bomb": ({"from_image": {"attachment": 5}, "to": "🐶"}, P.attachment(5, "bomb.png", bomb_url, 9000, "image/png")),
            }
            for name, (opts, att) in cases.items():
                p = P.command("interpolate", opts, sub="image", attachments=[att] if att else None)
                out[name] = (await invoke(fake, bot, p), fake.for_token(p["token"]))
            return out

    out = run(main())
    for name, (rec, _) in out.items():
        assert is_ephemeral(rec), name
    text = {k: body(v[0])["content"] for k, v in out.items()}
    assert "not an emoji" in text["word"] and "not an emoji" in text["path"]
    assert "exactly one" in text["both"] and "exactly one" in text["none"]
    assert "notes.txt" in text["text"] and "not an image" in text["text"]
    assert "50.0 MB" in text["huge"] and "limit is 8 MB" in text["huge"]
    assert "between 2 and 24" in text["frames"]
    assert "5000×5000 pixels" in text["bomb"] and "megapixels" in text["bomb"]
    # the corrupt file is only found out after the defer: the public placeholder is removed, the error is private
    rec, reqs = out["corrupt"]
    assert "junk.png" in text["corrupt"] and "not an image" in text["corrupt"]
    assert [r.method for r in reqs] == ["POST", "DELETE", "POST"] and reqs[0].json["type"] == 5


def test_interpolate_poem(bot_models: Path):
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            ok = await invoke(fake, bot, P.command("interpolate", {"from": "the moon and the rain",
                                                                   "to": "the bird upon the hill", "steps": 4}, sub="poem"))
            bad = await invoke(fake, bot, P.command("interpolate", {"from": "y" * 250, "to": "the sea"}, sub="poem"))
            return ok, bad

    ok, bad = run(main())
    lines = ok.json["embeds"][0]["description"].splitlines()
    assert len(lines) == 4 and "the moon and the rain" in lines[0] and "the bird upon the hill" in lines[-1]
    assert is_ephemeral(bad) and "250 characters" in body(bad)["content"]


def test_cooldown_dm_policy_and_queue(bot_models: Path):
    async def main():
        out = {}
        async with harness(bot_models, limits={"cooldown_rate": 1, "cooldown_per_s": 60.0}) as (fake, bot, P):
            await invoke(fake, bot, P.command("poem", {"lang": "en", "seed": 1}))
            out["cool"] = await invoke(fake, bot, P.command("poem", {"lang": "en", "seed": 2}))
        async with harness(bot_models, discord={"allow_dms": False}) as (fake, bot, P):
            out["dm"] = await invoke(fake, bot, Payloads(guild=False).command("poem", {"lang": "en"}))
            out["dm_zh"] = await invoke(fake, bot, Payloads(guild=False, locale="zh-CN").command("poem", {"lang": "en"}))
            out["guild_ok"] = await invoke(fake, bot, P.command("poem", {"lang": "en", "seed": 3}))
        async with harness(bot_models, engine={"per_user": 1, "max_queue": 2}) as (fake, bot, P):
            gen = bot.engine.loaded("image")
            real = gen.render

            def slow(z, labels, styles=None):
                time.sleep(0.4)
                return real(z, labels, styles)

            gen.render = slow
            a = P.command("image", {"theme": "circles", "seed": 1})
            bot._connection.parse_interaction_create(a)
            await fake.wait_for(lambda r: r.token == a["token"])  # deferred, now running
            out["user_cap"] = await invoke(fake, bot, P.command("image", {"theme": "circles", "seed": 2}))
            b = Payloads(user_id=42).command("image", {"theme": "circles", "seed": 3})
            bot._connection.parse_interaction_create(b)
            out["queued"] = (await fake.wait_for(lambda r: r.token == b["token"] and r.method == "PATCH"))[0]
            out["full"] = await invoke(fake, bot, Payloads(user_id=43).command("image", {"theme": "circles"}))
            out["b_done"] = await fake.wait_for(
                lambda r: r.token == b["token"] and r.method == "PATCH" and r.files, timeout=30)
        return out

    out = run(main())
    assert is_ephemeral(out["cool"])
    assert "Slow down" in body(out["cool"])["content"]
    assert is_ephemeral(out["dm"]) and "server" in body(out["dm"])["content"]
    assert is_ephemeral(out["dm_zh"]) and "服务器" in body(out["dm_zh"])["content"]
    assert out["guild_ok"].json["embeds"]
    assert is_ephemeral(out["user_cap"]) and "1 requests waiting" in body(out["user_cap"])["content"]
    assert "1 request(s) ahead of you" in out["queued"].json["content"]
    assert is_ephemeral(out["full"]) and "busy" in body(out["full"])["content"]
    assert out["b_done"][0].json["embeds"]  # the queued request still got its grid


def test_unexpected_errors_are_logged_with_an_id(bot_models: Path, caplog):
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            gen = bot.engine.loaded("image")

            def broken(z, labels, styles=None):
                raise RuntimeError("the generator caught fire")

            gen.render = broken
            return await invoke(fake, bot, P.command("image", {"theme": "circles", "seed": 1}))

    with caplog.at_level(logging.ERROR, logger="muse.errors"):
        rec = run(main())
    text = body(rec)["content"]
    assert is_ephemeral(rec) and "Error id `" in text and "Traceback" not in text and "fire" not in text
    error_id = text.split("`")[1]
    assert any(error_id in r.getMessage() and r.exc_info for r in caplog.records)


def test_missing_model_is_a_friendly_message(bot_models: Path, tmp_path: Path):
    async def main():
        async with harness(tmp_path) as (fake, bot, P):  # an empty models folder
            return await invoke(fake, bot, P.command("image", {"theme": "animals", "seed": 1}))

    rec = run(main())
    assert is_ephemeral(rec) and "dcgan" in body(rec)["content"] and "muse train" in body(rec)["content"]


def test_details_context_menu(bot_models: Path):
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            res = await invoke(fake, bot, P.command("image", {"theme": "triangles", "count": 2, "seed": 21}))
            msg = message_from(fake, res)
            details = await invoke(fake, bot, P.message_menu("Muse: details", msg))
            zh = await invoke(fake, bot, Payloads(locale="zh-CN").message_menu("Muse: details", msg))
            other = dict(msg, author={"id": "5", "username": "someone", "discriminator": "0", "avatar": None})
            not_muse = await invoke(fake, bot, P.message_menu("Muse: details", other))
            return details, zh, not_muse

    details, zh, not_muse = run(main())
    assert is_ephemeral(details)
    fields = {f["name"]: f["value"] for f in body(details)["embeds"][0]["fields"]}
    assert fields["Seed"] == "21" and fields["Model"] == "dcgan/v0001" and fields["Theme"] == "triangles"
    assert fields["Reproduce"] == "`/image theme:triangles count:2 seed:21`"
    assert fields["Parents"].startswith("none")
    assert body(zh)["embeds"][0]["title"] == "🔎 Muse 详情"
    assert is_ephemeral(not_muse) and "isn't a Muse result" in body(not_muse)["content"]


def test_test_guild_sync_is_translated_and_token_not_logged(bot_models: Path, caplog):
    async def main():
        async with harness(bot_models, discord={"test_guild": GUILD_ID}) as (fake, bot, P):
            return [r for r in fake.requests if r.method == "PUT"]

    with caplog.at_level(logging.DEBUG):
        puts = run(main())
    assert len(puts) == 1 and puts[0].path.endswith(f"/guilds/{GUILD_ID}/commands")
    cmds = {c["name"]: c for c in puts[0].json}
    assert set(cmds) == {"image", "poem", "interpolate", "muse", "session", "Muse: details", "Muse: morph from here"}
    for sub in cmds["session"]["options"]:  # every name and description of /session has its Chinese
        assert sub["name_localizations"]["zh-CN"] and sub["description_localizations"]["zh-CN"]
        for o in sub.get("options", []):
            assert o["name_localizations"]["zh-CN"] and o["description_localizations"]["zh-CN"], o["name"]
    assert cmds["image"]["name_localizations"]["zh-CN"] == "图片"
    assert cmds["poem"]["description_localizations"]["zh-CN"] == "写一首短诗"
    seed = next(o for o in cmds["image"]["options"] if o["name"] == "seed")
    assert seed["name_localizations"]["zh-CN"] == "种子" and seed["max_value"] == MAX_SEED
    sub = {o["name"]: o for o in cmds["interpolate"]["options"]}
    assert sub["image"]["options"][0]["name"] == "from"
    assert cmds["Muse: details"]["type"] == 3 and cmds["Muse: details"]["name_localizations"]["zh-CN"] == "Muse：详情"
    assert "fake-token" not in caplog.text
    assert BOT_ID  # the fake Discord's bot id was used for /users/@me


def test_poem_forms_their_language_rerolls_and_a_form_not_met(bot_models: Path, monkeypatch):
    """``/poem form:`` writes the form (its language inferred from it), names it in the embed and the footer, keeps
    it on a reroll; a form of the other language, and a form the model cannot meet within its tries, each get an
    ephemeral sentence."""
    from genmodels.verse import VerseConfig, syllables

    async def main():
        async with harness(bot_models) as (fake, bot, P):
            # a reroll draws a fresh seed at random, and the untrained tiny model meets a haiku only at some seeds
            monkeypatch.setattr(importlib.import_module("bot.ext.create.flows"), "random_seed", lambda: 5)
            haiku = await invoke(fake, bot, P.command("poem", {"form": "haiku", "seed": 3}))
            reroll = await invoke(fake, bot, P.button(custom_ids(haiku.json)[0], message_from(fake, haiku)))
            jueju = await invoke(fake, bot, P.command("poem", {"form": "jueju", "seed": 3}))
            wrong = await invoke(fake, bot, P.command("poem", {"lang": "en", "form": "lushi"}))
            bot.engine.loaded("textvae-en").verse = VerseConfig(batch=1, max_batches=1)  # almost no tries
            unmet = [await invoke(fake, bot, P.command("poem", {"form": "quatrain", "seed": s})) for s in range(6)]
            return haiku, reroll, jueju, wrong, unmet

    haiku, reroll, jueju, wrong, unmet = run(main())
    for rec in (haiku, reroll):
        e = rec.json["embeds"][0]
        lines = e["description"].splitlines()
        assert [n in syllables(line) for n, line in zip((5, 7, 5), lines)] == [True] * 3, lines  # readings
        assert "form=haiku" in e["footer"]["text"] and "lang=en" in e["footer"]["text"]
    assert {f["name"]: f["value"] for f in haiku.json["embeds"][0]["fields"]}["Form"] == "haiku"
    j = jueju.json["embeds"][0]
    assert "lang=zh" in j["footer"]["text"] and len(j["description"].splitlines()) == 2  # four clauses, two lines
    assert is_ephemeral(wrong) and "The lushi form is for Chinese poems" in body(wrong)["content"]
    refused = [r for r in unmet if is_ephemeral(r)]
    assert refused, "one candidate line per slot never met a quatrain in six seeds"
    assert all("couldn't make this poem a quatrain" in body(r)["content"] for r in refused)
