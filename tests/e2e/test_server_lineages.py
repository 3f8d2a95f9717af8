"""Every server its own taste, through the real discord.py: two servers' votes train two lineages with the real
trainer, each server is served its own version (and a DM the base), even when the engine's LRU holds one model at
a time; a server's rollback leaves the other alone; a member without Manage Server is refused; and a reset that
deletes a server's data asks for a button press by the same member first."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.fakediscord import GUILD_ID, USER_ID, Payloads
from museharness import body, custom_ids, harness, invoke, is_ephemeral, run
from test_feedback import _fields, _mid, react, settle

OTHER = 1100000000000000077  # a second server
MANAGER = 4400  # Manage Server in the second server, not Administrator
MEMBER = 4200


def elsewhere(p: dict, guild: int = OTHER) -> dict:
    """``p`` (a payload of the first server) as it would come from ``guild``."""
    p = dict(p, guild_id=str(guild))
    if "channel" in p:
        p["channel"] = dict(p["channel"], guild_id=str(guild))
    return p


def _png(rec) -> bytes:
    return next(data for name, data in rec.files.values() if name.endswith(".png"))


@pytest.mark.slow
def test_two_servers_train_two_lineages_and_keep_them_apart(bot_models: Path, shapes_npz: Path, tmp_path: Path,
                                                            monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(bot_models, models)  # the trainer writes the servers' deltas here
    monkeypatch.setenv("MUSE_DATA_DIR", str(shapes_npz.parent))  # the replay data
    trainer = {"enabled": True, "min_feedback": 1000, "every_hours": 0.0, "tolerance": 10.0}
    manager = Payloads(user_id=MANAGER, permissions=str(1 << 5))
    member = Payloads(user_id=MEMBER, permissions="0")
    image = lambda seed: {"theme": "circles", "count": 2, "seed": seed}  # noqa: E731

    async def main():
        async with harness(models, trainer=trainer, engine={"max_loaded_models": 1},
                           database={"path": str(tmp_path / "muse.sqlite3")}) as (fake, bot, P):
            bot.trainer.config.finetune.steps, bot.trainer.config.finetune.batch = 2, 8
            # each server votes on its own results, with opposite tastes
            for guild, liked, disliked in ((GUILD_ID, 1, 2), (OTHER, 2, 1)):
                recs = {s: await invoke(fake, bot, elsewhere(P.command("image", image(s)), guild)) for s in (1, 2)}
                for uid in (101, 102, 103):
                    await react(bot, "add", elsewhere(P.reaction_add(_mid(recs[liked]), "👍", user_id=uid), guild))
                    await react(bot, "add", elsewhere(P.reaction_add(_mid(recs[disliked]), "👎", user_id=uid), guild))
            train = {"kind": "dcgan"}
            out = {"refused": await invoke(fake, bot, member.command("muse", train, sub="model train")),
                   "one": await invoke(fake, bot, P.command("muse", train, sub="model train"), 120),
                   "two": await invoke(fake, bot, elsewhere(manager.command("muse", train, sub="model train")), 120)}
            # requests alternate between the servers with an LRU of one model: each gets its own
            for name, payload in (("a1", P.command("image", image(5))), ("b1", elsewhere(P.command("image", image(5)))),
                                  ("a2", P.command("image", image(5))), ("dm", Payloads(guild=False).command(
                                      "image", image(5)))):
                out[name] = await invoke(fake, bot, payload)
            out["evicted"] = bot.engine.stats["evicted"]
            out["status_two"] = await invoke(fake, bot, elsewhere(manager.command("muse", sub="model status")))
            # the first server rolls back: back to the base, the second keeps its own
            out["rb"] = await invoke(fake, bot, P.command("muse", train, sub="model rollback"))
            out["a3"] = await invoke(fake, bot, P.command("image", image(5)))
            out["b2"] = await invoke(fake, bot, elsewhere(P.command("image", image(5))))
            # the second server deletes its data: a confirmation first, pressed by the same member only
            ask = await invoke(fake, bot, elsewhere(manager.command("muse", {"delete_data": True}, sub="model reset")))
            out["ask"] = ask
            (delete, _cancel) = custom_ids(body(ask))
            msg = fake._message(body(ask))  # the ephemeral message the confirmation was sent as, with its buttons
            out["stranger"] = await invoke(fake, bot, elsewhere(P.button(delete, msg)))
            press = elsewhere(manager.button(delete, msg))
            bot._connection.parse_interaction_create(press)  # answered by editing the confirmation (no new message)
            await settle()
            out["deleted"] = [r.json for r in fake.for_token(press["token"])]
            out["b3"] = await invoke(fake, bot, elsewhere(P.command("image", image(5))))
            out["left"] = {g: len(await bot.store.feedback("dcgan", server=g)) for g in (GUILD_ID, OTHER)}
            out["changes"] = await bot.store.model_changes(GUILD_ID)
            return out

    out = run(main())
    assert is_ephemeral(out["refused"]) and "Manage Server" in body(out["refused"])["content"]
    assert body(out["one"])["content"].startswith("✅ **dcgan**: promoted **v0001**, trained on 6 votes")
    assert body(out["two"])["content"].startswith("✅ **dcgan**: promoted **v0001**, trained on 6 votes")
    model = {k: _fields(out[k])["Model"] for k in ("a1", "b1", "a2", "dm", "a3", "b2", "b3")}
    assert model["a1"] == model["a2"] == f"dcgan:{GUILD_ID}/v0001"
    assert model["b1"] == model["b2"] == f"dcgan:{OTHER}/v0001"
    assert model["dm"] == model["a3"] == model["b3"] == "dcgan/v0001"  # a DM, a rollback, a reset: the base
    # reloaded after an eviction, the first server's model draws exactly what it drew before
    assert out["evicted"] >= 2 and _png(out["a1"]) == _png(out["a2"]) != _png(out["b1"])
    status = _fields(out["status_two"])["dcgan"]
    assert "Serving **v0001**, this server's own (learned on the base v0001)" in status
    assert body(out["rb"])["content"] == "↩️ **dcgan**: serving **base v0001** again."
    assert "cannot be undone" in body(out["ask"])["content"] and is_ephemeral(out["ask"])
    assert is_ephemeral(out["stranger"]) and "Manage Server" in body(out["stranger"])["content"]
    (update, edit) = out["deleted"]  # the buttons go at once, then the confirmation says what was deleted
    assert update["type"] == 7 and update["data"]["components"] == []
    assert edit["content"].startswith("🗑️ Deleted this server's data: 4 results"), edit
    assert out["left"] == {GUILD_ID: 6, OTHER: 0}  # the first server keeps all of its votes
    assert [(c["action"], c["actor_id"]) for c in out["changes"]][:2] == [("rollback", USER_ID), ("promoted", USER_ID)]
