"""Every value a button's or a form's custom_id carries passes the same check as the slash command's option.

A hand-made (or garbled) id is answered at once with the ephemeral "I can't rebuild this result any more", quoting
the check's own sentence, and nothing is posted publicly: no public defer, no result, no channel message. Driven
through the real discord.py with real gateway payloads against the fake Discord.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bench.fakediscord import FakeDiscord, Recorded
from bot import checks
from museharness import body, harness, invoke, is_ephemeral, message_from, run, with_buttons


def _text(rec) -> str:
    return body(rec).get("content") or ""


def _public(fake: FakeDiscord, token: str) -> list[Recorded]:
    """What an interaction made visible to everyone: a public callback (a message or "is thinking…"), or a
    followup or edit without the ephemeral flag."""
    out = []
    for r in fake.for_token(token):
        data = r.json if isinstance(r.json, dict) else {}
        if r.path.endswith("/callback"):
            if data.get("type") in (4, 5) and not (data.get("data") or {}).get("flags", 0) & 64:
                out.append(r)
        elif r.method in ("POST", "PATCH") and not data.get("flags", 0) & 64:
            out.append(r)
    return out


def _channel_posts(fake: FakeDiscord) -> list[Recorded]:
    return [r for r in fake.requests if r.method == "POST" and "/channels/" in r.path and r.path.endswith("/messages")]


def _refused_at_once(fake: FakeDiscord, rec: Recorded, token: str, name: str) -> None:
    assert is_ephemeral(rec) and rec.path.endswith("/callback") and rec.json["type"] == 4, (name, rec.json)
    assert not _public(fake, token), (name, [r.json for r in _public(fake, token)])
    assert "rebuild" in _text(rec) and "Error id" not in _text(rec), (name, _text(rec))


def _errors(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_poem_buttons_hold_their_values_to_the_options_checks(bot_models: Path, caplog):
    ids = {
        "hot": "muse:pr:en:999",  # temperature 9.99
        "cold": "muse:pr:en:0",  # temperature 0
        "var_hot": "muse:pv:en:999:4",
        "var_cold": "muse:pv:zh:5:4",
        "var_seed": "muse:pv:en:90:zzzzzzz",  # a parent seed past 2**32 - 1
    }

    async def main():
        async with harness(bot_models) as (fake, bot, P):
            poem = await invoke(fake, bot, P.command("poem", {"lang": "en", "seed": 4}))
            msg = with_buttons(message_from(fake, poem), *ids.values())
            posts_before = len(_channel_posts(fake))
            out = {}
            for name, cid in ids.items():
                p = P.button(cid, msg)
                out[name] = (await invoke(fake, bot, p), p["token"])
            option = await invoke(fake, bot, P.command("poem", {"lang": "en", "temperature": 9.99}))
            option_cold = await invoke(fake, bot, P.command("poem", {"lang": "en", "temperature": 0.0}))
            posts_after = len(_channel_posts(fake))
            fine = await invoke(fake, bot, P.button("muse:pv:en:90:4", message_from(fake, poem)))
            return fake, out, option, option_cold, posts_before, posts_after, fine, bot.engine.queued

    with caplog.at_level(logging.INFO):
        fake, out, option, option_cold, before, after, fine, queued = run(main())
    for name, (rec, token) in out.items():
        _refused_at_once(fake, rec, token, name)
    assert before == after and queued == 0
    # the same sentence as the slash command's option gives
    assert is_ephemeral(option) and _text(option) in _text(out["hot"][0]) and _text(option) in _text(out["var_hot"][0])
    assert "`temperature` must be between 0.2 and 1.5; you gave 9.99." in _text(out["hot"][0])
    assert "`temperature` must be between 0.2 and 1.5" in _text(option_cold)
    assert "`temperature` must be between 0.2 and 1.5; you gave 0" in _text(out["cold"][0])
    assert "between 0.2 and 1.5; you gave 0.05" in _text(out["var_cold"][0])
    assert "seed must be a whole number from 0 to 4294967295" in _text(out["var_seed"][0])
    assert not is_ephemeral(fine) and fine.json["embeds"][0]["title"] == "📜 A variation"  # the real button works
    assert not _errors(caplog)


def test_image_buttons_and_the_morph_form_hold_their_values_to_the_options_checks(bot_models: Path, caplog):
    ids = {
        "v99": ("muse:iv:98:0:9.99", "`count` must be between 1 and 4; you gave 99."),  # "variations of V99"
        "cell_out": ("muse:iv:5:0:3.4", "`cell` must be between 1 and 4; you gave 6."),
        "seed_overflow": ("muse:iv:0:0:zzzzzzzzzzzzz.4", "seed must be a whole number from 0 to 4294967295"),
        "lineage_cell": ("muse:iv:0:0:1.4.9_2.4", "`cell` must be between 1 and 4; you gave 10."),
        "lineage_count": ("muse:iv:0:0:1.9.0_2.4", "`count` must be between 1 and 4; you gave 9."),
        "reroll_count": ("muse:ir:0:9", "`count` must be between 1 and 4; you gave 9."),
        "reroll_zero": ("muse:ir:0:0", "`count` must be between 1 and 4; you gave 0."),
        "theme": ("muse:ir:99:4", "I don't know the theme “99”"),
        "style": ("muse:iv:0:0s9:3.4", "doesn't draw the style “9”"),
        "morph_count": ("muse:im:0:9.99", "`count` must be between 1 and 4; you gave 99."),
        "morph_seed": ("muse:im:0:zzzzzzzzzzzzz.4", "seed must be a whole number"),
        "morph_theme": ("muse:im:99:5.4", "I don't know the theme “99”"),
    }
    forms = {
        "message_overflow": ("muse:mm:0:3.4:zzzzzzzzzzzzz", "`message` must be between 1 and"),
        "form_theme": ("muse:mm:99:3.4", "I don't know the theme “99”"),
        "form_style": ("muse:mm:0s9:3.4", "doesn't draw the style “9”"),
        "form_seed": ("muse:mm:0:zzzzzzzzzzzzz.4", "seed must be a whole number"),
        "form_count": ("muse:mm:0:3.99", "`count` must be between 1 and 4; you gave 99."),
    }

    async def main():
        async with harness(bot_models) as (fake, bot, P):
            img = await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 4, "seed": 3}))
            msg = message_from(fake, img)
            modal = (await invoke(fake, bot, P.button("muse:im:0:3.4", msg))).json["data"]
            posts_before = len(_channel_posts(fake))
            out = {}
            for name, (cid, _) in ids.items():
                p = P.button(cid, with_buttons(msg, cid))
                out[name] = (await invoke(fake, bot, p), p["token"])
            for name, (cid, _) in forms.items():
                p = P.modal_submit(dict(modal, custom_id=cid), {"Which cell (1-4)": "1", "Morph to (an emoji)": "🐶"})
                out[name] = (await invoke(fake, bot, p), p["token"])
            posts_after = len(_channel_posts(fake))
            count = await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 9}))
            fine = await invoke(fake, bot, P.modal_submit(modal, {"Which cell (1-4)": "2",
                                                                  "Morph to (an emoji)": "🐶"}))
            return fake, out, posts_before, posts_after, count, fine, bot.engine.queued

    with caplog.at_level(logging.INFO):
        fake, out, before, after, count, fine, queued = run(main())
    for name, (cid, said) in {**ids, **forms}.items():
        rec, token = out[name]
        _refused_at_once(fake, rec, token, name)
        assert said in _text(rec), (name, _text(rec))
    assert before == after and queued == 0
    assert _text(count) in _text(out["reroll_count"][0])  # the slash command's own sentence
    assert not is_ephemeral(fine) and fine.files["files[0]"][0] == "morph.gif"  # the real form works
    assert not _errors(caplog)


def test_the_commands_declare_the_limits_the_checks_enforce(bot_models: Path):
    """The limits Discord's client enforces as the member types (``Range`` on the command) are the ones the shared
    checks hold both the options and the custom_ids to."""
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            def param(command: str, name: str):
                cmd = bot.tree.get_command(command.split()[0])
                for part in command.split()[1:]:
                    cmd = cmd.get_command(part)
                return next(p for p in cmd.parameters if p.name == name)

            return {"count": param("image", "count"), "temperature": param("poem", "temperature"),
                    "frames": param("interpolate image", "frames"), "steps": param("interpolate poem", "steps"),
                    "lang": param("poem", "lang")}

    got = run(main())
    for name, limits in (("count", checks.COUNT), ("temperature", checks.TEMPERATURE), ("frames", checks.FRAMES),
                         ("steps", checks.STEPS)):
        assert (got[name].min_value, got[name].max_value) == limits, name
    assert tuple(c.value for c in got["lang"].choices) == checks.LANGS
