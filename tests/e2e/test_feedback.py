"""Learning from reactions, the Discord side: stored results, reactions → votes, buttons → signals, ``/muse``.

Real gateway payloads (INTERACTION_CREATE, MESSAGE_REACTION_ADD/REMOVE/REMOVE_ALL/REMOVE_EMOJI, GUILD_CREATE)
go into discord.py; its HTTP goes to the loopback fake Discord; the store is a real SQLite file in tmp_path.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bench.fakediscord import BOT_ID, CHANNEL_ID, DM_CHANNEL_ID, GUILD_ID, USER_ID, FakeDiscord, Payloads
from bot import render
from bot.settings import SettingsError, load_settings
from genmodels.latents import Generation
from museharness import body, harness, is_ephemeral, message_from, run
from museharness import invoke as _invoke

MEMBER = 4200  # a member without any permission
ADMIN = 4300  # an administrator who is not the bot's owner (USER_ID owns the fake application)


def _db(tmp_path: Path) -> dict:
    return {"database": {"path": str(tmp_path / "muse.sqlite3")}}


def _mid(rec) -> int:
    """The id of the message a result was posted as (what the fake Discord answered the edit with)."""
    return int(rec.response["id"])


_HANDLERS = ("discord.py: on_raw_reaction", "CommandTree-invoker", "discord-ui-view-dispatch", "discord-ui-modal",
             "discord-ui-dynamic-item")


async def settle() -> None:
    """Wait for the handlers discord.py scheduled: each listener, command and button runs in its own task (and a
    result is stored just after its message is posted, so after the request a test waits for)."""
    while True:
        pending = [t for t in asyncio.all_tasks() if t.get_name().startswith(_HANDLERS) and not t.done()]
        if not pending:
            return
        await asyncio.gather(*pending)


async def invoke(fake, bot, payload: dict):
    """`museharness.invoke`, then wait until the interaction's handler has finished (its result stored)."""
    rec = await _invoke(fake, bot, payload)
    await settle()
    return rec


async def react(bot, event: str, payload: dict) -> None:
    getattr(bot._connection, f"parse_message_reaction_{event}")(payload)
    await settle()


class Notified:
    """A stand-in trainer that only records ``notify`` (the reaction tests need nothing else)."""

    def __init__(self):
        self.models: list[str] = []
        self.servers: list[int | None] = []  # the server each vote counts toward (None: a DM)

    def notify(self, model: str, server: int | None = None) -> None:
        self.models.append(model)
        self.servers.append(server)


# ---- results ------------------------------------------------------------------------------------------------


def test_every_posted_result_is_stored_with_its_message(bot_models: Path, tmp_path: Path):
    async def main():
        async with harness(bot_models, **_db(tmp_path)) as (fake, bot, P):
            img = await invoke(fake, bot, P.command("image", {"theme": "squares", "count": 4, "seed": 7}))
            poem = await invoke(fake, bot, P.command("poem", {"lang": "en", "seed": 5, "theme": "the moon"}))
            morph = await invoke(fake, bot, P.command("interpolate", {"from": "🐱", "to": "🐶", "frames": 3}, sub="image"))
            verse = await invoke(fake, bot, P.command("interpolate", {"from": "the moon and the rain",
                                                                      "to": "the bird upon the hill", "steps": 3},
                                                      sub="poem"))
            dm = await invoke(fake, bot, Payloads(guild=False).command("poem", {"lang": "en", "seed": 6}))
            rows = [await bot.store.get_result(message_id=_mid(r)) for r in (img, poem, morph, verse, dm)]
            gen, poet = bot.engine.loaded("image"), bot.engine.loaded("poem-en")
            again = poet.sample(5, lines=4, temperature=0.9, theme="the moon")
            z = gen.lineage_latents([Generation(7, 4)], "squares").numpy()  # the grid the seed names
            return img, poem, verse, rows, z, again, poet.model.cfg.latent_dim

    img, poem, verse, (r_img, r_poem, r_morph, r_verse, r_dm), z, again, dim = run(main())
    assert r_img.kind == "image" and r_img.model == "dcgan" and r_img.model_version == "v0001"
    assert r_img.seed == 7 and r_img.params["theme"] == "squares" and r_img.params["lineage"] == "7.4"
    assert r_img.latent.dtype == np.float32 and r_img.latent.shape == (4, 16)  # one row per cell
    assert np.array_equal(r_img.latent, z)
    assert (r_img.message_id, r_img.channel_id, r_img.guild_id, r_img.requester_id) == (
        _mid(img), CHANNEL_ID, GUILD_ID, USER_ID)
    assert r_img.parents == []
    # the poem: its lines' latents (one row per line), the text, and the seed + parameters that reproduce it
    assert r_poem.kind == "poem" and r_poem.model == "textvae-en" and r_poem.model_version == "v0001"
    assert r_poem.seed == 5 and r_poem.latent.dtype == np.float32 and r_poem.latent.shape == (4, dim)  # (lines, D)
    assert np.array_equal(r_poem.latent, again.latents.numpy()) and r_poem.content == again.text
    assert r_poem.params == {"lang": "en", "theme": "the moon", "temperature": 0.9, "lines": 4, "form": "free"}
    assert r_poem.content == poem.json["embeds"][0]["description"]
    assert r_morph.kind == "morph" and r_morph.model == "vae"
    assert r_morph.params == {"from": {"emoji": "🐱", "style": "noto"}, "to": {"emoji": "🐶", "style": "noto"},
                              "frames": 3}
    assert r_morph.latent.shape == (3, 8)  # the frames' VAE latents: what the trainer fine-tunes the VAE on
    assert r_verse.kind == "morph-poem" and r_verse.model == "textvae-en" and len(r_verse.content.splitlines()) == 3
    assert r_dm.guild_id is None and r_dm.channel_id == DM_CHANNEL_ID


def test_a_store_failure_never_breaks_the_reply(bot_models: Path, tmp_path: Path, caplog):
    async def main():
        async with harness(bot_models, **_db(tmp_path)) as (fake, bot, P):
            async def broken(**kw):
                raise RuntimeError("the disk is full")

            bot.store.record_result = broken
            rec = await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 1, "seed": 3}))
            bot.store.get_result = broken
            await react(bot, "add", P.reaction_add(_mid(rec), "👍"))
            return rec

    with caplog.at_level(logging.ERROR, logger="muse.errors"):
        rec = run(main())
    assert rec.files["files[0]"][0] == "muse.png" and not is_ephemeral(rec)  # the user got the grid
    logged = [r for r in caplog.records if r.exc_info and "disk is full" in str(r.exc_info[1])]
    assert len(logged) == 2 and "storing a image result" in logged[0].getMessage()
    assert "recording a reaction" in logged[1].getMessage() and "unexpected error" in logged[1].getMessage()


# ---- reactions ----------------------------------------------------------------------------------------------


def test_reactions_become_votes(bot_models: Path, tmp_path: Path, caplog):
    trainer = Notified()

    async def main():
        async with harness(bot_models, bot_kw={"trainer": trainer}, **_db(tmp_path)) as (fake, bot, P):
            bot._connection.parse_guild_create(P.guild_create())  # as the gateway does on connect
            rec = await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 2, "seed": 1}))
            mid = _mid(rec)
            row = await bot.store.get_result(message_id=mid)
            vote = lambda uid=USER_ID: bot.store.vote_of(row.id, uid)  # noqa: E731
            out = {}
            await react(bot, "add", P.reaction_add(mid, "👍"))
            out["like"] = (await vote(), list(trainer.models), list(trainer.servers))
            await react(bot, "add", P.reaction_add(mid, "👎"))
            out["change"] = (await vote(), len(trainer.models))
            await react(bot, "remove", P.reaction_remove(mid, "👎"))
            out["back"] = await vote()  # the 👍 is still on the message
            await react(bot, "remove", P.reaction_remove(mid, "👍"))
            out["none"] = (await vote(), len(trainer.models))
            await react(bot, "add", P.reaction_add(mid, "🎉"))  # not a vote emoji
            await react(bot, "add", P.reaction_add(mid, "👍", user_id=777, bot=True))  # another bot
            await react(bot, "remove", P.reaction_remove(mid, "👍", user_id=777))
            await react(bot, "add", P.reaction_add(mid, "👍", user_id=BOT_ID, bot=True))  # Muse itself
            await react(bot, "add", P.reaction_add(mid, "👍", author_id=5))  # someone else's message
            await react(bot, "add", P.reaction_add(12345, "👍"))  # a message with no stored result
            out["ignored"] = (await vote(), await vote(777), await vote(BOT_ID), len(trainer.models))
            await react(bot, "add", P.reaction_add(mid, "👍🏽", user_id=MEMBER))  # a skin tone is still a 👍
            await react(bot, "add", P.reaction_add(mid, {"id": None, "name": "❤"}, user_id=ADMIN))  # no U+FE0F
            out["variants"] = (await vote(MEMBER), await vote(ADMIN))
            # a user spamming the same reaction: handled concurrently, idempotent, ends where it should
            before = len(trainer.models)
            for _ in range(15):
                bot._connection.parse_message_reaction_add(P.reaction_add(mid, "🔥", user_id=99))
                bot._connection.parse_message_reaction_remove(P.reaction_remove(mid, "🔥", user_id=99))
            bot._connection.parse_message_reaction_add(P.reaction_add(mid, "🔥", user_id=99))
            await settle()
            out["spam"] = (await vote(99), len(trainer.models) - before, await bot.store.counts("dcgan"))
            await react(bot, "remove_emoji", P.reaction_clear(mid, emoji="🔥"))
            out["clear_emoji"] = (await vote(99), await vote(MEMBER))
            await react(bot, "remove_all", P.reaction_clear(mid))
            out["clear"] = (await vote(MEMBER), await vote(ADMIN))
            return out

    with caplog.at_level(logging.INFO, logger="muse"):
        out = run(main())
    # the trainer hears about the model whose vote changed, and the server whose lineage it counts toward
    assert out["like"] == (1, ["dcgan"], [GUILD_ID])
    assert out["change"] == (-1, 2) and out["back"] == 1 and out["none"] == (0, 4)
    assert out["ignored"] == (0, 0, 0, 4)  # nothing stored, nothing notified
    assert out["variants"] == (1, 1)
    vote99, notified, counts = out["spam"]
    assert vote99 == 1 and 1 <= notified <= 31 and counts["voters"] == 3 and counts["likes"] == 3
    assert out["clear_emoji"] == (0, 1) and out["clear"] == (0, 0)
    assert not [r for r in caplog.records if r.name.startswith("muse.feedback")]  # nothing per reaction at INFO


def test_old_messages_still_collect_votes_after_a_restart(bot_models: Path, tmp_path: Path):
    async def main():
        fake = await FakeDiscord().start()
        try:
            async with harness(bot_models, fake=fake, **_db(tmp_path)) as (_, bot, P):
                poem = await invoke(fake, bot, P.command("poem", {"lang": "en", "seed": 4}))
            # a new process: a new bot, an empty message cache, the same database file
            async with harness(bot_models, fake=fake, **_db(tmp_path)) as (_, bot, P):
                assert bot._connection._get_message(_mid(poem)) is None
                await react(bot, "add", P.reaction_add(_mid(poem), "❤️", user_id=MEMBER, guild=True))
                await react(bot, "add", Payloads(guild=False).reaction_add(_mid(poem), "👎", author_id=None))
                row = await bot.store.get_result(message_id=_mid(poem))
                votes = (await bot.store.vote_of(row.id, MEMBER), await bot.store.vote_of(row.id, USER_ID))
                click = await invoke(fake, bot, P.button("muse:pr:en:90", message_from(fake, poem)))
                return votes, click, await bot.store.export_csv()
        finally:
            await fake.stop()

    votes, click, exported = run(main())
    assert votes == (1, -1)  # a guild member's ❤️, and a DM reaction (no member, no author id)
    assert click.json["embeds"]
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert {(r["source"], r["user_id"]) for r in rows} == {("vote", str(MEMBER)), ("vote", str(USER_ID)),
                                                           ("reroll", str(USER_ID))}


# ---- buttons ------------------------------------------------------------------------------------------------


def test_buttons_are_weak_signals_and_variations_keep_their_parent(bot_models: Path, tmp_path: Path):
    async def main():
        async with harness(bot_models, **_db(tmp_path)) as (fake, bot, P):
            store = bot.store
            img = await invoke(fake, bot, P.command("image", {"theme": "squares", "count": 4, "seed": 7}))
            msg = message_from(fake, img)
            v2 = await invoke(fake, bot, Payloads(user_id=MEMBER).button("muse:iv:1:1:7.4", msg))
            again = await invoke(fake, bot, P.button("muse:ir:1:4", msg))
            modal = await invoke(fake, bot, P.button("muse:im:1:7.4", msg))
            morph = await invoke(fake, bot, P.modal_submit(modal.json["data"], {"Which cell (1-4)": "2",
                                                                               "Morph to (an emoji)": "🐶"}))
            poem = await invoke(fake, bot, P.command("poem", {"lang": "zh", "seed": 2}))
            pmsg = message_from(fake, poem)
            pvar = await invoke(fake, bot, P.button("muse:pv:zh:90:2", pmsg))
            preroll = await invoke(fake, bot, P.button("muse:pr:zh:90", pmsg))
            rows = {k: await store.get_result(message_id=_mid(r))
                    for k, r in dict(img=img, v2=v2, again=again, morph=morph, poem=poem, pvar=pvar,
                                     preroll=preroll).items()}
            gen = bot.engine.loaded("image")
            meta = render.parse_footer(v2.json["embeds"][0]["footer"]["text"])
            z_v2 = gen.lineage_latents(render.decode_lineage(meta["lineage"], base=10), meta["theme"]).numpy()
            return rows, await store.export_csv(GUILD_ID), z_v2

    rows, exported, z_v2 = run(main())
    img, v2 = rows["img"], rows["v2"]
    assert v2.parents == [img.id] and v2.params["parent_cell"] == 1 and v2.requester_id == MEMBER
    assert np.allclose(v2.latent, z_v2, atol=1e-6)  # the stored latent is the grid's, re-derivable from seeds
    assert v2.params["lineage"].startswith("7.4.1_")
    assert rows["again"].parents == []  # a reroll is feedback on the parent, not a child of it
    assert rows["morph"].parents == [img.id] and rows["morph"].params["from"]["cell"] == 1
    assert rows["pvar"].parents == [rows["poem"].id] and rows["pvar"].params["parent_seed"] == 2
    assert rows["preroll"].parents == [] and rows["pvar"].model == "textvae-zh"
    signals = [(int(r["result_id"]), int(r["user_id"]), r["source"], float(r["value"]))
               for r in csv.DictReader(io.StringIO(exported)) if r["source"] != "vote"]
    assert signals == [(img.id, MEMBER, "variation", 0.3), (img.id, USER_ID, "reroll", -0.3),
                       (rows["poem"].id, USER_ID, "variation", 0.3), (rows["poem"].id, USER_ID, "reroll", -0.3)]


# ---- /muse --------------------------------------------------------------------------------------------------


def _fields(rec) -> dict[str, str]:
    return {f["name"]: f["value"] for f in body(rec)["embeds"][0]["fields"]}


def test_admin_commands_refuse_members_and_serve_admins(bot_models: Path, tmp_path: Path):
    member = Payloads(user_id=MEMBER, permissions="0")
    admin_ = Payloads(user_id=ADMIN)

    async def main():
        # the home guild's administrators may look after the shared models (see test_reliability for the rest)
        async with harness(bot_models, discord={"home_guild": GUILD_ID}, **_db(tmp_path)) as (fake, bot, P):
            img = await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 1, "seed": 2}))
            poem = await invoke(fake, bot, member.command("poem", {"lang": "en", "seed": 3}))
            for uid in (MEMBER, ADMIN, 31, 32):
                await react(bot, "add", P.reaction_add(_mid(img), "👍", user_id=uid))
            await react(bot, "add", P.reaction_add(_mid(poem), "👎", user_id=ADMIN))
            await react(bot, "add", P.reaction_add(_mid(poem), "⭐", user_id=USER_ID))
            out = {"img": img}
            for name, sub in (("status", "model status"), ("export", "feedback export"),
                              ("train", "model train"), ("rollback", "model rollback")):
                opts = {"kind": "vae"} if name in ("train", "rollback") else {}
                out[f"no_{name}"] = await invoke(fake, bot, member.command("muse", opts, sub=sub))
            out["no_zh"] = await invoke(fake, bot, Payloads(user_id=MEMBER, permissions="0", locale="zh-CN")
                                        .command("muse", sub="model status"))
            out["status"] = await invoke(fake, bot, admin_.command("muse", sub="model status"))
            out["status_dm_owner"] = await invoke(fake, bot, Payloads(guild=False).command("muse", sub="model status"))
            out["no_dm"] = await invoke(fake, bot, Payloads(guild=False, user_id=ADMIN).command("muse", sub="model status"))
            out["export"] = await invoke(fake, bot, admin_.command("muse", sub="feedback export"))
            out["train_off"] = await invoke(fake, bot, admin_.command("muse", {"kind": "dcgan"}, sub="model train"))
            out["bad_kind"] = await invoke(fake, bot, admin_.command("muse", {"kind": "gpt"}, sub="model rollback"))
            out["stats"] = await invoke(fake, bot, member.command("muse", sub="stats"))
            out["stats_zh"] = await invoke(fake, bot, Payloads(user_id=ADMIN, locale="zh-CN").command("muse", sub="stats"))
            out["stats_dm"] = await invoke(fake, bot, Payloads(guild=False, user_id=MEMBER).command("muse", sub="stats"))
            return out

    out = run(main())
    for name in ("status", "export", "train", "rollback", "dm"):
        rec = out[f"no_{name}"]
        assert is_ephemeral(rec) and rec.path.endswith("/callback"), name  # refused at once, nothing deferred
    assert body(out["no_export"])["content"].startswith("Only server administrators")
    for name in ("status", "train", "rollback"):  # this server's models: members with Manage Server
        assert "Only members with **Manage Server** here" in body(out[f"no_{name}"])["content"], name
    # the base, in a DM: shared by every server, so the owner and the home guild's administrators only
    assert "shared by every server" in body(out["no_dm"])["content"]
    assert "home server" in body(out["no_dm"])["content"]
    assert body(out["no_zh"])["content"].startswith("只有在这里拥有**管理服务器**权限")
    # status: this server's lineage, one field per model, with what is served, the counts and the like rates
    st = out["status"]
    assert is_ephemeral(st) and "webhooks" in st.path
    fields = _fields(st)
    assert list(fields)[:4] == ["dcgan", "vae", "textvae-en", "textvae-zh"]
    assert body(st)["embeds"][0]["title"] == "🧠 This server's models"
    assert "Serving the base **v0001**: this server has no version of its own yet" in fields["dcgan"]
    assert "👍 4 · 👎 0" in fields["dcgan"]
    assert "base v0001 100% (4)" in fields["dcgan"] and "base v0001 50% (2)" in fields["textvae-en"]
    assert "Last run: never" in fields["vae"] and "no votes yet" in fields["vae"]
    assert "train only this server's models" in body(st)["embeds"][0]["footer"]["text"]
    dm = body(out["status_dm_owner"])["embeds"][0]  # the owner, in a DM: the base
    assert dm["title"] == "🧠 Muse's base models (shared by every server)" and "Serving **v0001**" in dm["fields"][0]["value"]
    # export: a CSV attachment whose rows parse
    ex = out["export"]
    assert is_ephemeral(ex) and "6 votes" in body(ex)["content"]
    name, data = ex.files["files[0]"]
    assert name.startswith(f"muse-feedback-{GUILD_ID}-") and name.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert len(rows) == 6 and {r["source"] for r in rows} == {"vote"}
    assert sorted(int(r["value"]) for r in rows) == [-1, 1, 1, 1, 1, 1]
    assert {r["model"] for r in rows} == {"dcgan", "textvae-en"}
    assert is_ephemeral(out["train_off"]) and "trainer is switched off" in body(out["train_off"])["content"]
    assert is_ephemeral(out["bad_kind"]) and "I don't know the model “gpt”" in body(out["bad_kind"])["content"]
    # stats: the member's own numbers and the server's favourites, with a jump link
    s = out["stats"]
    assert is_ephemeral(s)
    f = _fields(s)
    assert f["Results you asked for"] == "1" and f["Votes you gave"] == "1" and f["Likes your results got"] == "1"
    link = f"https://discord.com/channels/{GUILD_ID}/{CHANNEL_ID}/{_mid(out['img'])}"
    assert f["⭐ This server's favourites"].splitlines()[0].startswith("**+4** · image · circles · 2")
    assert link in f["⭐ This server's favourites"]
    zh = body(out["stats_zh"])["embeds"][0]
    assert zh["title"] == "📊 你和 Muse" and "图片" in {x["name"]: x["value"] for x in zh["fields"]}["⭐ 本服务器最受欢迎的作品"]
    assert "⭐ This server's favourites" not in _fields(out["stats_dm"])  # no server in a DM


def test_train_and_rollback_replies_with_a_stand_in_trainer(bot_models: Path, tmp_path: Path):
    """The formatting of every outcome; the real trainer's behaviour is the trainer's own tests' business."""
    from genmodels.feedback.trainer import NothingToRollBack

    class StandIn(Notified):
        def __init__(self):
            super().__init__()
            self.calls = []

        async def train(self, model, server=None, *, trigger="admin", actor=None):
            self.calls.append(("train", model, server, trigger, actor))
            outcome = {"dcgan": "promoted", "vae": "refused", "textvae-en": "failed"}.get(model, "skipped")
            return SimpleNamespace(model=model, outcome=outcome, version="v0002",
                                   served="v0002" if outcome == "promoted" else "v0001",
                                   reason={"vae": "diversity fell 14% (tolerance 10%)", "textvae-en": "out of memory",
                                           "textvae-zh": "only 3 new votes"}.get(model, ""),
                                   metrics={"kid": 0.0123456, "like_rate": 0.8}, feedback_used=40, run_id=1)

        async def rollback(self, model, server=None, *, actor=None):
            if model == "vae":
                raise NothingToRollBack("There is no earlier vae version to roll back to.")
            return "v0001"

        async def status(self, server=None):
            return [{"model": "dcgan", "served": "v0002",
                     "versions": [{"version": "v0001", "status": "retired"}, {"version": "v0002", "status": "served"}],
                     "last_run": {"outcome": "promoted", "trigger": "admin:1", "started_at": 1.7e9,
                                  "finished_at": 1.7e9 + 60, "detail": {"reason": "better"}},
                     "counts": {"results": 3, "likes": 2, "dislikes": 1, "voters": 2, "signals": 0},
                     "like_rates": {"v0001": {"likes": 2, "dislikes": 1, "like_rate": 2 / 3}}}]

    trainer = StandIn()

    async def main():
        async with harness(bot_models, bot_kw={"trainer": trainer}, **_db(tmp_path)) as (fake, bot, P):
            out = {m: await invoke(fake, bot, P.command("muse", {"kind": m}, sub="model train"))
                   for m in ("dcgan", "vae", "textvae-en", "textvae-zh")}
            out["rb"] = await invoke(fake, bot, P.command("muse", {"kind": "dcgan"}, sub="model rollback"))
            out["rb_none"] = await invoke(fake, bot, P.command("muse", {"kind": "vae"}, sub="model rollback"))
            out["rb_zh"] = await invoke(fake, bot, Payloads(locale="zh-CN").command("muse", {"kind": "vae"},
                                                                                   sub="model rollback"))
            out["status"] = await invoke(fake, bot, P.command("muse", sub="model status"))
            return out

    out = run(main())
    text = {k: body(v)["content"] for k, v in out.items() if k != "status"}
    assert all(is_ephemeral(v) for v in out.values())
    assert trainer.calls[0] == ("train", "dcgan", GUILD_ID, f"admin:{USER_ID}", USER_ID)  # this server's lineage
    assert text["dcgan"].startswith("✅ **dcgan**: promoted **v0002**, trained on 40 votes")
    assert "kid=0.01235" in body(out["dcgan"])["embeds"][0]["fields"][0]["value"]
    assert "not promoted: diversity fell 14% (tolerance 10%). Still serving v0001" in text["vae"]
    assert text["textvae-en"].startswith("❌ **textvae-en**: training failed: out of memory")
    assert "nothing was trained: only 3 new votes" in text["textvae-zh"]
    assert text["rb"] == "↩️ **dcgan**: serving **v0001** again."
    assert text["rb_none"] == "**vae** has no earlier version to roll back to: it is still serving base v0001."
    assert text["rb_zh"].startswith("**vae** 没有可以回滚到的旧版本")
    f = _fields(out["status"])
    assert "Serving **v0002**" in f["dcgan"] and "Versions kept: v0001 (retired), v0002" in f["dcgan"]
    assert "**promoted** (better)" in f["dcgan"] and "<t:1700000060:R>" in f["dcgan"] and "67% (3)" in f["dcgan"]


@pytest.mark.slow
def test_train_and_rollback_with_the_real_trainer(bot_models: Path, shapes_npz: Path, tmp_path: Path, monkeypatch):
    """The real `Trainer` behind ``/muse model train`` and ``rollback`` in a server: a fine-tune of this server's
    lineage of the tiny dcgan (a delta on the base, two steps, in the trainer's worker process), promoted (the
    gate's tolerance is wide open here), served to this server and not to a DM, then rolled back to the base."""
    models = tmp_path / "models"
    shutil.copytree(bot_models, models)  # the trainer writes v0002 next to v0001: not in the shared models
    monkeypatch.setenv("MUSE_DATA_DIR", str(shapes_npz.parent))  # the replay data
    trainer = {"enabled": True, "min_feedback": 1000, "every_hours": 0.0, "tolerance": 1.0}

    async def main():
        async with harness(models, trainer=trainer, **_db(tmp_path)) as (fake, bot, P):
            bot.trainer.config.finetune.steps, bot.trainer.config.finetune.batch = 2, 8
            train = P.command("muse", {"kind": "dcgan"}, sub="model train")
            out = {"rb_none": await invoke(fake, bot, P.command("muse", {"kind": "dcgan"}, sub="model rollback")),
                   "skipped": await invoke(fake, bot, train)}
            liked = await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 4, "seed": 1}))
            disliked = await invoke(fake, bot, P.command("image", {"theme": "squares", "count": 4, "seed": 2}))
            for uid in (101, 102, 103):
                await react(bot, "add", P.reaction_add(_mid(liked), "👍", user_id=uid))
                await react(bot, "add", P.reaction_add(_mid(disliked), "👎", user_id=uid))
            out["train"] = await invoke(fake, bot, P.command("muse", {"kind": "dcgan"}, sub="model train"), )
            out["status"] = await invoke(fake, bot, P.command("muse", sub="model status"))
            out["new"] = await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 1, "seed": 1}))
            out["dm"] = await invoke(fake, bot, Payloads(guild=False).command("image", {"theme": "circles",
                                                                                       "count": 1, "seed": 1}))
            out["rb"] = await invoke(fake, bot, P.command("muse", {"kind": "dcgan"}, sub="model rollback"))
            out["old"] = await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 1, "seed": 1}))
            out["runs"] = await bot.store.runs("dcgan")
            out["versions"] = await bot.store.model_versions("dcgan", GUILD_ID)
            out["base_versions"] = await bot.store.model_versions("dcgan")
            out["results"] = [await bot.store.get_result(message_id=_mid(out[k])) for k in ("new", "dm", "old")]
            return out

    out = run(main())
    assert body(out["rb_none"])["content"] == ("**dcgan** has no earlier version to roll back to: "
                                               "it is still serving base v0001.")
    assert body(out["skipped"])["content"].startswith("⏭️ **dcgan**: nothing was trained: no feedback yet")
    text = body(out["train"])["content"]
    assert text.startswith("✅ **dcgan**: promoted **v0001**, trained on 6 votes. Now serving v0001."), text
    assert "precision=" in body(out["train"])["embeds"][0]["fields"][0]["value"]
    f = _fields(out["status"])["dcgan"]
    assert "Serving **v0001**, this server's own (learned on the base v0001)" in f, f
    assert "**promoted** (passed: precision" in f
    assert "base v0001 50% (6)" in f  # the like rate of the version the votes were cast on
    changes = _fields(out["status"])["\u200b"]
    assert f"dcgan promoted v0001 <@{USER_ID}>" in changes  # who did it
    assert _fields(out["new"])["Model"] == f"dcgan:{GUILD_ID}/v0001"  # this server's own version serves it
    assert _fields(out["dm"])["Model"] == "dcgan/v0001"  # a DM: the base
    assert body(out["rb"])["content"] == "↩️ **dcgan**: serving **base v0001** again."
    assert _fields(out["old"])["Model"] == "dcgan/v0001"
    assert [(r["outcome"], r["trigger"], r["feedback_used"], r["server"]) for r in out["runs"]] == [
        ("promoted", f"admin:{USER_ID}", 6, GUILD_ID)]
    assert {v["version"]: v["status"] for v in out["versions"]} == {"v0001": "refused"}
    assert {v["version"]: v["status"] for v in out["base_versions"]} == {"v0001": "served"}  # the base did not move
    assert [r.lineage for r in out["results"]] == [GUILD_ID, 0, 0]


# ---- wiring -------------------------------------------------------------------------------------------------


def test_trainer_reports_go_to_the_channel_or_the_owner(bot_models: Path, tmp_path: Path):
    async def main():
        out = {}
        async with harness(bot_models, **_db(tmp_path)) as (fake, bot, P):
            await bot.report_to_admins("dcgan: promoted v0002")
            out["dm"] = [r for r in fake.requests if r.method == "POST" and "/channels" in r.path]
        async with harness(bot_models, trainer={"report_channel": 555}, **_db(tmp_path)) as (fake, bot, P):
            await bot.report_to_admins("x" * 3000)
            out["channel"] = [r for r in fake.requests if r.method == "POST" and "/channels" in r.path]

            async def down(_):
                raise OSError("no route")

            bot.fetch_channel = down
            await bot.report_to_admins("lost")  # logged, never raised
        return out

    out = run(main())
    opened, sent = out["dm"]
    assert opened.path.endswith("/users/@me/channels") and int(opened.json["recipient_id"]) == USER_ID
    assert sent.path.endswith(f"/channels/{DM_CHANNEL_ID}/messages") and sent.json["content"] == "dcgan: promoted v0002"
    (ch,) = out["channel"]
    assert ch.path.endswith("/channels/555/messages") and len(ch.json["content"]) == 2000


def test_intents_settings_and_injection(bot_models: Path, tmp_path: Path):
    from bot import create_bot

    s = load_settings(env={"MUSE_TRAINER_MIN_FEEDBACK": "5", "MUSE_TRAINER_REPORT_CHANNEL": "123",
                           "MUSE_FEEDBACK_POSITIVE": "👍, 🎉", "MUSE_FEEDBACK_REROLL_WEIGHT": "-0.5",
                           "MUSE_TRAINER_ENABLED": "no"})
    assert s.trainer.min_feedback == 5 and s.trainer.report_channel == 123 and s.trainer.enabled is False
    # [feedback] is the store's VoteConfig, whose emoji are tuples
    assert s.feedback.positive == ("👍", "🎉") and s.feedback.negative == ("👎",) and s.feedback.reroll_weight == -0.5
    d = load_settings(env={})
    assert d.feedback.positive == ("👍", "❤️", "⭐", "🔥") and d.feedback.variation_weight == 0.3
    assert (d.trainer.enabled, d.trainer.min_feedback, d.trainer.every_hours, d.trainer.per_user_cap,
            d.trainer.tolerance, d.trainer.report_channel) == (True, 32, 24.0, 16, 0.15, 0)
    for env, match in (({"MUSE_FEEDBACK_NEGATIVE": "👍"}, "share 👍"), ({"MUSE_TRAINER_MIN_FEEDBACK": "0"}, "at least 1"),
                       ({"MUSE_FEEDBACK_VARIATION_WEIGHT": "3"}, "between -1 and 1")):
        with pytest.raises(SettingsError, match=match):
            load_settings(env=env)
    bot = create_bot(s, store="a store", trainer="a trainer")  # injected; nothing connects or opens
    i = bot.intents
    assert i.guild_reactions and i.dm_reactions and i.guilds
    assert not (i.message_content or i.members or i.presences)  # no privileged intent
    assert (bot.store, bot.trainer) == ("a store", "a trainer")

    async def main():  # an injected store is used as is, and left open for its owner
        from genmodels.feedback.store import FeedbackStore

        store = await FeedbackStore.open(tmp_path / "own.sqlite3")
        try:
            async with harness(bot_models, bot_kw={"store": store}) as (fake, bot, P):
                rec = await invoke(fake, bot, P.command("poem", {"lang": "en", "seed": 1}))
            return (await store.get_result(message_id=_mid(rec))).kind  # still open after bot.close()
        finally:
            await store.close()

    assert run(main()) == "poem"


def test_the_muse_group_syncs_with_translations(bot_models: Path):
    async def main():
        async with harness(bot_models, discord={"test_guild": GUILD_ID}) as (fake, bot, P):
            (put,) = [r for r in fake.requests if r.method == "PUT"]
            return next(c for c in put.json if c["name"] == "muse")

    muse = run(main())
    subs = {o["name"]: o for o in muse["options"]}
    assert set(subs) == {"model", "feedback", "stats", "web"} and subs["stats"]["type"] == 1
    assert subs["web"]["name_localizations"]["zh-CN"] == "网页" and subs["web"]["options"][0]["type"] == 5
    assert subs["model"]["type"] == 2 and {o["name"] for o in subs["model"]["options"]} == {
        "status", "train", "rollback", "reset"}
    train = next(o for o in subs["model"]["options"] if o["name"] == "train")
    assert [c["value"] for c in train["options"][0]["choices"]] == ["dcgan", "vae", "textvae-en", "textvae-zh"]
    assert subs["stats"]["name_localizations"]["zh-CN"] == "统计"
    assert subs["model"]["description_localizations"]["zh-CN"] == "本服务器的模型及其训练（管理服务器）"
    assert [o["name"] for o in subs["feedback"]["options"]] == ["export"]
