"""Buttons, modals and the morph context menu, including clicks on messages posted before a restart."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from bench.fakediscord import FakeDiscord, Payloads
from bot import render
from genmodels.engine import Generation
from museharness import body, custom_ids, harness, invoke, is_ephemeral, message_from, run, with_buttons


def _fields(rec) -> dict[str, str]:
    return {f["name"]: f["value"] for f in rec.json["embeds"][0]["fields"]}


def _grid(rec) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(rec.files["files[0]"][1])).convert("RGBA"))


def test_reroll_and_variations_are_tied_to_their_parent(bot_models: Path):
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            first = await invoke(fake, bot, P.command("image", {"theme": "squares", "count": 4, "seed": 7}))
            msg = message_from(fake, first)
            reroll = await invoke(fake, bot, P.button("muse:ir:1:4", msg))
            v2 = await invoke(fake, bot, P.button("muse:iv:1:1:7.4", msg))
            v2_msg = message_from(fake, v2)
            v2_ids = custom_ids(v2.json)
            grand = await invoke(fake, bot, P.button(next(i for i in v2_ids if i.startswith("muse:iv:3:")), v2_msg))
            gen = bot.engine.loaded("image")
            meta = render.parse_footer(v2.json["embeds"][0]["footer"]["text"])
            lineage = render.decode_lineage(meta["lineage"], base=10)
            expected = gen.render(gen.lineage_latents(lineage, 1), [1] * 4)
            return first, reroll, v2, grand, lineage, expected

    first, reroll, v2, grand, lineage, expected = run(main())
    assert _fields(reroll)["Theme"] == "squares" and _fields(reroll)["Seed"] != "7"
    assert reroll.files["files[0]"][1] != first.files["files[0]"][1]
    # V2 of seed 7: a new grid whose lineage starts at cell 1 of the parent, and whose pixels follow from it
    assert v2.json["embeds"][0]["title"] == "🎨 squares: variations of V2"
    assert _fields(v2)["Parents"] == "7·V2"
    assert lineage[0] == Generation(7, 4, 1) and lineage[1].count == 4 and lineage[1].cell is None
    cells = _grid(v2)[::4, ::4]  # back to 64 px cells
    ref = np.concatenate([np.concatenate([np.asarray(expected[0]), np.asarray(expected[1])], 1),
                          np.concatenate([np.asarray(expected[2]), np.asarray(expected[3])], 1)], 0)
    assert np.abs(cells.astype(int) - ref.astype(int)).max() <= 2
    # a variation of a variation keeps the whole chain
    assert _fields(grand)["Parents"] == f"7·V2 → {lineage[1].seed}·V4"


def test_style_travels_with_the_grid(styled_bot_models: Path, bot_models: Path):
    async def main():
        async with harness(styled_bot_models) as (fake, bot, P):
            noto = await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 2, "seed": 9}))
            first = await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 2, "seed": 9,
                                                                "style": "openmoji"}))
            msg = message_from(fake, first)
            rer = await invoke(fake, bot, P.button("muse:ir:0s1:2", msg))
            var = await invoke(fake, bot, P.button("muse:iv:1:0s1:9.2", msg))
            old = with_buttons(msg, "muse:ir:0:2")  # an id posted before styles: the default style
            old_id = await invoke(fake, bot, P.button("muse:ir:0:2", old))
            modal = await invoke(fake, bot, P.button("muse:im:0s1:9.2", msg))
            morph = await invoke(fake, bot, P.modal_submit(modal.json["data"], {"Which cell (1-4)": "1",
                                                                              "Morph to (an emoji)": "🐶"}))
            details = await invoke(fake, bot, P.message_menu("Muse: details", msg))
            anyone = await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 1, "seed": 4,
                                                                 "style": "any"}))
            gen = bot.engine.loaded("image")
            want = gen.generate("circles", count=2, seed=9, style="openmoji").images
        async with harness(bot_models) as (fake, bot, P):  # a model trained before styles draws Noto alone
            refused = await invoke(fake, bot, P.command("image", {"theme": "circles", "seed": 1,
                                                                  "style": "twemoji"}))
        return noto, first, rer, var, old_id, modal, morph, details, anyone, want, refused

    noto, first, rer, var, old_id, modal, morph, details, anyone, want, refused = run(main())
    assert _fields(noto)["Style"] == "noto" and _fields(first)["Style"] == "openmoji"
    assert noto.files["files[0]"][1] != first.files["files[0]"][1]  # same seed, another style
    cells = _grid(first)[::4, ::4]
    assert np.abs(cells[:64, :64].astype(int) - np.asarray(want[0]).astype(int)).max() <= 2
    assert "muse:ir:0s1:2" in custom_ids(first.json) and "muse:iv:1:0s1:9.2" in custom_ids(first.json)
    assert "muse:ir:0:2" in custom_ids(noto.json)  # the default style keeps the short ids
    assert _fields(rer)["Style"] == "openmoji" and _fields(var)["Style"] == "openmoji"
    assert _fields(var)["Parents"] == "9·V2" and _fields(old_id)["Style"] == "noto"
    assert modal.json["data"]["custom_id"].startswith("muse:mm:0s1:")
    assert morph.files["files[0]"][0] == "morph.gif" and _fields(morph)["From"] == "Muse 9·V1"
    meta = render.parse_footer(first.json["embeds"][0]["footer"]["text"])
    assert meta["style"] == "openmoji" and meta["style_index"] == "1"
    shown = {f["name"]: f["value"] for f in body(details)["embeds"][0]["fields"]}
    assert shown["Style"] == "openmoji" and shown["Reproduce"] == "`/image theme:circles style:openmoji count:2 seed:9`"
    assert shown["Licence"].startswith("This image: CC BY-SA 4.0.") and "OpenMoji" in shown["Licence"]
    assert _fields(anyone)["Style"] == ["noto", "openmoji"][4 % 2]  # "any" is drawn from the seed
    assert is_ephemeral(refused) and "twemoji" in body(refused)["content"] and "noto" not in body(refused)["content"]


def test_interpolate_across_styles(bot_models: Path, tmp_path, monkeypatch):
    ims = np.zeros((2, 64, 64, 4), np.uint8)
    ims[:, 8:56, 8:56] = (0, 0, 255, 255)
    np.savez(tmp_path / "images.npz", train_images=ims, train_labels=np.array([2, 2]),
             train_chars=np.array(["🐶", "🐱"]), train_styles=np.array([1, 1]), heldout_images=ims[:0],
             heldout_labels=np.array([], int), heldout_chars=np.array([], "<U2"), heldout_styles=np.array([], int),
             style_names=np.array(["noto", "twemoji"]), stats=np.array("{}"))

    async def main():
        async with harness(bot_models) as (fake, bot, P):
            monkeypatch.setenv("MUSE_DATA_DIR", str(tmp_path))
            ok = await invoke(fake, bot, P.command("interpolate", {"from": "🐱", "to": "🐶", "frames": 4,
                                                                   "to_style": "twemoji"}, sub="image"))
            plain = await invoke(fake, bot, P.command("interpolate", {"from": "🐱", "to": "🐶", "frames": 4},
                                                      sub="image"))
            missing = await invoke(fake, bot, P.command("interpolate", {"from": "🐱", "to": "🍕",
                                                                        "to_style": "twemoji"}, sub="image"))
            monkeypatch.setenv("MUSE_DATA_DIR", str(tmp_path / "nothing here"))
            bot.engine.loaded("vae")._library = None  # as on a host that never prepared the sets
            unprepared = await invoke(fake, bot, P.command("interpolate", {"from": "🐱", "to": "🐶",
                                                                           "from_style": "openmoji"}, sub="image"))
            return ok, plain, missing, unprepared

    ok, plain, missing, unprepared = run(main())
    assert ok.files["files[0]"][0] == "morph.gif" and _fields(ok)["To"] == "🐶 (twemoji)"
    assert _fields(plain)["To"] == "🐶" and plain.files["files[0]"][0] == "morph.gif"  # Noto's, from the font
    assert is_ephemeral(missing) and "twemoji has no design for “🍕”" in body(missing)["content"]
    assert is_ephemeral(unprepared) and "muse prepare images" in body(unprepared)["content"]


def test_buttons_work_after_a_restart(bot_models: Path):
    async def main():
        fake = await FakeDiscord().start()
        try:
            async with harness(bot_models, fake=fake) as (_, bot, P):
                img = await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 2, "seed": 99}))
                poem = await invoke(fake, bot, P.command("poem", {"lang": "en", "seed": 4, "theme": "the sea"}))
                first_bot = bot
            # a new process: a new bot object and a new engine, the same old messages
            async with harness(bot_models, fake=fake) as (_, bot, P):
                assert bot is not first_bot
                img_msg, poem_msg = message_from(fake, img), message_from(fake, poem)
                var = await invoke(fake, bot, P.button("muse:iv:0:0:2r.2", img_msg))
                rer = await invoke(fake, bot, P.button("muse:ir:0:2", img_msg))
                p_rer = await invoke(fake, bot, P.button("muse:pr:en:90", poem_msg))
                p_var = await invoke(fake, bot, P.button("muse:pv:en:90:4", poem_msg))
                zh_var = await invoke(fake, bot, Payloads(locale="zh-CN").button("muse:iv:1:0:2r.2", img_msg))
            return img, poem, var, rer, p_rer, p_var, zh_var
        finally:
            await fake.stop()

    img, poem, var, rer, p_rer, p_var, zh_var = run(main())
    assert "muse:iv:0:0:2r.2" in custom_ids(img.json)  # 99 in base 36
    assert _fields(var)["Parents"] == "99·V1" and var.files["files[0]"][0] == "muse.png"
    assert Image.open(io.BytesIO(var.files["files[0]"][1])).size == (512, 512)  # four children, 2×2 cells of 256 px
    assert _fields(rer)["Theme"] == "circles" and len(Image.open(io.BytesIO(rer.files["files[0]"][1])).getbands()) == 4
    assert _fields(p_rer)["Theme"] == "the sea" and p_rer.json["embeds"][0]["description"]
    pv = p_var.json["embeds"][0]
    assert pv["title"] == "📜 A variation" and _fields(p_var)["Parents"] == "4"
    first_line = poem.json["embeds"][0]["description"].splitlines()[0].strip().rstrip("，。,.!?;:")
    assert _fields(p_var)["Theme"] == first_line  # the variation grows from the parent's first line
    assert zh_var.json["embeds"][0]["title"].endswith("V2 的变体")


def test_morph_from_here_button_and_menu(bot_models: Path):
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            img = await invoke(fake, bot, P.command("image", {"theme": "triangles", "count": 4, "seed": 5}))
            msg = message_from(fake, img)
            modal = await invoke(fake, bot, P.button("muse:im:2:5.4", msg))
            done = await invoke(fake, bot, P.modal_submit(modal.json["data"], {"Which cell (1-4)": "3",
                                                                              "Morph to (an emoji)": "🐶"}))
            menu = await invoke(fake, bot, P.message_menu("Muse: morph from here", msg))
            bad = await invoke(fake, bot, P.modal_submit(menu.json["data"], {"Which cell (1-4)": "9",
                                                                            "Morph to (an emoji)": "🐶"}))
            poem = await invoke(fake, bot, P.command("poem", {"lang": "en", "seed": 1}))
            not_image = await invoke(fake, bot, P.message_menu("Muse: morph from here", message_from(fake, poem)))
            return modal, done, menu, bad, not_image

    modal, done, menu, bad, not_image = run(main())
    assert modal.json["type"] == 9 and menu.json["type"] == 9  # a modal, answered at once
    assert done.files["files[0]"][0] == "morph.gif" and done.files["files[0]"][1][:6] == b"GIF89a"
    assert _fields(done)["From"] == "Muse 5·V3" and _fields(done)["To"] == "🐶"
    assert is_ephemeral(bad) and "between 1 and 4" in body(bad)["content"]
    assert is_ephemeral(not_image) and "image result" in body(not_image)["content"]


def test_broken_or_too_deep_buttons_answer_politely(bot_models: Path):
    deep = "_".join(["1.4.0"] * 6) + "_1.4"  # 7 generations: the deepest a grid may be; no child fits

    async def main():
        async with harness(bot_models) as (fake, bot, P):
            img = await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 1, "seed": 3}))
            msg = with_buttons(message_from(fake, img), f"muse:iv:0:0:{deep}", "muse:iv:0:0:zz_zz", "muse:iv:3:0:3.1")
            too_deep = await invoke(fake, bot, P.button(f"muse:iv:0:0:{deep}", msg))
            garbled = await invoke(fake, bot, P.button("muse:iv:0:0:zz_zz", msg))
            out_of_grid = await invoke(fake, bot, P.button("muse:iv:3:0:3.1", msg))
            return img, too_deep, garbled, out_of_grid

    img, too_deep, garbled, out_of_grid = run(main())
    assert [i for i in custom_ids(img.json) if i.startswith("muse:iv:")] == ["muse:iv:0:0:3.1"]
    for rec in (too_deep, garbled, out_of_grid):
        assert is_ephemeral(rec) and rec.path.endswith("/callback")
    assert "rebuild" in body(garbled)["content"] and "rebuild" in body(out_of_grid)["content"]
    assert "7 generations deep" in body(too_deep)["content"]


def test_lineage_codec_round_trips():
    lin = (Generation(4294967295, 4, 3), Generation(0, 4, 0), Generation(123456, 2))
    for base in (10, 36):
        assert render.decode_lineage(render.encode_lineage(lin, base), base) == lin
    assert render.encode_lineage(lin) == "1z141z3.4.3_0.4.0_2n9c.2"
    for bad in ("", "1.4.0", "1.4_2.4", "x!.4"):
        try:
            render.decode_lineage(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")
