"""Faults, as a hostile or unlucky server would cause them: every interaction gets an answer, nothing is lost.

Each test here reproduces one fault from `docs/RELIABILITY.md` through the real discord.py, the loopback fake
Discord (which can be told to fail requests: `FakeDiscord.fail`) and a real SQLite file.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench.fakediscord import APP_ID, GUILD_ID, USER_ID, FakeDiscord, Payloads
from museharness import body, custom_ids, harness, invoke, is_ephemeral, message_from, run, with_buttons

ROOT = Path(__file__).resolve().parents[2]
OTHER_GUILD = 1100000000000000099
ADMIN = 4300  # an administrator who does not own the bot (USER_ID owns the fake application)


def _text(rec) -> str:
    return body(rec).get("content") or ""


def _errors(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


# ---- 6. every interaction gets an answer --------------------------------------------------------------------


def test_an_overlong_option_gets_a_short_answer(bot_models: Path):
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            return await invoke(fake, bot, P.command("image", {"theme": "x" * 2100}))

    rec = run(main())
    assert is_ephemeral(rec) and rec.path.endswith("/callback")
    assert len(_text(rec)) <= 2000 and "theme" in _text(rec)


def test_stale_buttons_and_unknown_commands_are_answered(bot_models: Path, caplog):
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            img = await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 1, "seed": 3}))
            msg = with_buttons(message_from(fake, img), "muse:zz:1:2", "muse:ir:x", "someone-elses-button")
            out = {name: await invoke(fake, bot, P.button(cid, msg))
                   for name, cid in (("old", "muse:zz:1:2"), ("bad", "muse:ir:x"), ("foreign", "someone-elses-button"))}
            out["command"] = await invoke(fake, bot, P.command("paint", {"what": "a cat"}))
            out["menu"] = await invoke(fake, bot, P.message_menu("Muse: remix", message_from(fake, img)))
            p = P.autocomplete("paint", "what", "ca")
            bot._connection.parse_interaction_create(p)
            out["autocomplete"] = (await fake.wait_for(lambda r: r.token == p["token"], timeout=10))[0]
            return out

    with caplog.at_level(logging.INFO):
        out = run(main())
    for name in ("old", "bad", "foreign", "command", "menu"):
        assert is_ephemeral(out[name]) and out[name].path.endswith("/callback"), name
    assert "older version of Muse" in _text(out["old"]) and "older version of Muse" in _text(out["bad"])
    assert "no longer has" in _text(out["command"]) and "/paint" in _text(out["command"])
    assert "no longer has" in _text(out["menu"])
    assert out["autocomplete"].json == {"type": 8, "data": {"choices": []}}
    assert not _errors(caplog)


def test_the_morph_form_works_after_a_restart_and_a_timeout(bot_models: Path, caplog):
    async def main():
        fake = await FakeDiscord().start()
        try:
            async with harness(bot_models, fake=fake) as (_, bot, P):
                img = await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 2, "seed": 5}))
                msg = message_from(fake, img)
                ask = await invoke(fake, bot, P.button("muse:im:0:5.2", msg))
            modal = ask.json["data"]
            # a new process: the form was opened by the old one
            async with harness(bot_models, fake=fake) as (_, bot, P):
                after = await invoke(fake, bot, P.modal_submit(modal, {"Which cell (1-4)": "2",
                                                                       "Morph to (an emoji)": "🐶"}))
                expired = await invoke(fake, bot, P.modal_submit(dict(modal, custom_id="muse:old-form"), {}))
            return modal, after, expired
        finally:
            await fake.stop()

    with caplog.at_level(logging.INFO):
        modal, after, expired = run(main())
    assert modal["custom_id"].startswith("muse:mm:")
    assert not is_ephemeral(after) and after.files["files[0]"][0] == "morph.gif"
    assert is_ephemeral(expired) and "expired" in _text(expired)
    assert not _errors(caplog)


# ---- 7. friendly messages for what the member can fix -------------------------------------------------------


def test_what_the_member_can_fix_is_never_an_error_id(bot_models: Path, caplog):
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            gone = fake.add_asset("gone.png", b"", "image/png")
            del fake.assets["gone.png"]  # the URL now answers 404, as an expired attachment does
            out = {
                "missing": await invoke(fake, bot, P.command("image", {"count": 2})),
                "wrong_type": await invoke(fake, bot, P.command("image", {"theme": "circles", "count": "four"})),
                "surrogate": await invoke(fake, bot, P.command("poem", {"lang": "en", "theme": "moon \ud800 night"})),
                "surrogate_verse": await invoke(fake, bot, P.command(
                    "interpolate", {"from": "the sea \udc00", "to": "the sky"}, sub="poem")),
                "gone": await invoke(fake, bot, P.command(
                    "interpolate", {"from_image": {"attachment": 9}, "to": "🐶"}, sub="image",
                    attachments=[P.attachment(9, "cat.png", gone, 2000, "image/png")])),
                "group": await invoke(fake, bot, P.command("interpolate", {})),  # an old, subcommand-less /interpolate
            }
            return out

    with caplog.at_level(logging.INFO):
        out = run(main())
    for name, rec in out.items():
        assert is_ephemeral(rec), name
        assert "Error id" not in _text(rec), (name, _text(rec))
    assert "theme" in _text(out["missing"]) and "reload" in _text(out["missing"]).lower()
    assert "count" in _text(out["wrong_type"]) and "four" in _text(out["wrong_type"])
    assert "characters" in _text(out["surrogate"]) and "theme" in _text(out["surrogate"])
    assert "characters" in _text(out["surrogate_verse"])
    assert "cat.png" in _text(out["gone"]) and "download" in _text(out["gone"])
    assert "reload" in _text(out["group"]).lower()
    assert not _errors(caplog)


# ---- 2 and 10. an upload is decoded with an allow-list, within a memory bound ------------------------------


def test_a_postscript_upload_never_reaches_ghostscript(bot_models: Path, tmp_path: Path, monkeypatch):
    import shutil

    from PIL import EpsImagePlugin, Image

    calls = tmp_path / "gs-calls.log"
    (tmp_path / "bin").mkdir()
    fake_gs = tmp_path / "bin" / "gs"
    fake_gs.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\nexit 0\n')
    fake_gs.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)  # Pillow caches where it found gs
    assert shutil.which("gs") == str(fake_gs)
    eps = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n%%EndComments\n"
           b"newpath 0 0 moveto 16 0 lineto 16 16 lineto closepath fill\nshowpage\n%%EOF\n")
    big = io.BytesIO()
    Image.new("1", (4096, 4096)).save(big, "PNG")  # 2 KiB that would decode to 64 MiB of RGBA

    async def main():
        async with harness(bot_models) as (fake, bot, P):
            out = {}
            for name, data in (("eps", eps), ("big", big.getvalue())):
                url = fake.add_asset(f"{name}.png", data, "image/png")
                p = P.command("interpolate", {"from_image": {"attachment": 7}, "to": "🐶"}, sub="image",
                              attachments=[P.attachment(7, "pic.png", url, len(data), "image/png")])
                out[name] = await invoke(fake, bot, p)
            return out

    out = run(main())
    assert is_ephemeral(out["eps"]) and "not an image" in _text(out["eps"]) and "pic.png" in _text(out["eps"])
    assert not calls.exists(), f"Ghostscript was run: {calls.read_text()}"
    assert is_ephemeral(out["big"]) and "4096×4096 pixels" in _text(out["big"])


# ---- 5. the shared model belongs to the owner and the home guild --------------------------------------------


def test_model_commands_are_for_each_server_s_managers_and_the_base_for_the_owner(bot_models: Path):
    admin_here = Payloads(user_id=ADMIN)
    admin_elsewhere = Payloads(user_id=ADMIN)
    member = Payloads(user_id=4200, permissions="0")
    manager = Payloads(user_id=4400, permissions=str(1 << 5))  # Manage Server, not Administrator
    base = {"kind": "vae", "scope": "base"}

    def elsewhere(p: dict) -> dict:
        p = dict(p, guild_id=str(OTHER_GUILD))
        p["channel"] = dict(p["channel"], guild_id=str(OTHER_GUILD))
        return p

    async def main():
        out = {}
        async with harness(bot_models) as (fake, bot, P):  # no home guild: the owner alone has the base
            out["no_home"] = await invoke(fake, bot, admin_here.command("muse", base, sub="model train"))
            out["owner"] = await invoke(fake, bot, P.command("muse", base, sub="model rollback"))
            out["member"] = await invoke(fake, bot, member.command("muse", {"kind": "vae"}, sub="model train"))
            out["member_reset"] = await invoke(fake, bot, member.command("muse", sub="model reset"))
            out["manager"] = await invoke(fake, bot, manager.command("muse", {"kind": "vae"}, sub="model train"))
            out["admin"] = await invoke(fake, bot, admin_here.command("muse", {"kind": "vae"}, sub="model rollback"))
        async with harness(bot_models, discord={"home_guild": GUILD_ID}) as (fake, bot, P):
            out["home"] = await invoke(fake, bot, admin_here.command("muse", base, sub="model rollback"))
            out["other"] = await invoke(fake, bot, elsewhere(admin_elsewhere.command("muse", base, sub="model train")))
            out["other_status"] = await invoke(fake, bot, elsewhere(admin_elsewhere.command(
                "muse", {"scope": "base"}, sub="model status")))
            out["other_own"] = await invoke(fake, bot, elsewhere(
                admin_elsewhere.command("muse", {"kind": "vae"}, sub="model train")))
            out["other_export"] = await invoke(fake, bot, elsewhere(
                admin_elsewhere.command("muse", sub="feedback export")))
        return out

    out = run(main())
    for name in ("no_home", "other", "other_status"):  # the base is shared by every server
        assert is_ephemeral(out[name]) and out[name].path.endswith("/callback"), name
        assert "shared by every server" in _text(out[name]), name
    for name in ("member", "member_reset"):  # this server's models: Manage Server
        assert is_ephemeral(out[name]) and out[name].path.endswith("/callback"), name
        assert "Only members with **Manage Server** here" in _text(out[name]), name
    # the owner and the home guild's admins get through to the base, a server's managers and admins to their own
    # (the trainer is off in these tests)
    for name in ("owner", "home", "manager", "admin", "other_own"):
        assert "trainer is switched off" in _text(out[name]), name
    # a server's own votes stay its admins' business
    assert "shared by every server" not in _text(out["other_export"])


# ---- 8. a failed test-guild sync is one paragraph -----------------------------------------------------------


@pytest.mark.parametrize("status,code,words", [(403, 50001, "not in that server"), (404, 10004, "no server")])
def test_a_failed_test_guild_sync_says_what_to_fix(bot_models: Path, monkeypatch, capsys, status, code, words):
    from bot import cli

    async def start_fake():
        return await FakeDiscord().start()

    async def main():
        fake = await FakeDiscord().start()
        fake.fail("PUT", f"/guilds/{GUILD_ID}/commands", status, code, "Missing Access")
        try:
            from bot.settings import load_settings
            settings = load_settings(env={}, overrides={"discord": {"application_id": APP_ID},
                                                        "engine": {"models_dir": str(bot_models)}})
            return await cli.sync_commands(settings, "fake-token", GUILD_ID)
        finally:
            await fake.stop()

    with pytest.raises(cli.GuildSyncError) as err:
        run(main())
    text = str(err.value)
    assert words in text and str(GUILD_ID) in text and "Traceback" not in text
    # `muse run` and `muse sync` print it as one paragraph and exit 2
    monkeypatch.setenv("DISCORD_TOKEN", "fake-token")
    monkeypatch.setattr(cli, "sync_commands", lambda *a, **k: (_ for _ in ()).throw(err.value))
    assert cli.main(["sync", "--guild", str(GUILD_ID)]) == 2
    assert words in capsys.readouterr().err


# ---- 9. no token at any log level ---------------------------------------------------------------------------


def test_debug_logs_carry_no_interaction_token(bot_models: Path):
    from bot.cli import configure_logging

    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("DEBUG", stream=stream)
    try:
        async def main():
            async with harness(bot_models) as (fake, bot, P):
                p = P.command("image", {"theme": "circles", "count": 1, "seed": 3})
                await invoke(fake, bot, p)
                await invoke(fake, bot, P.command("image", {"theme": "dragons"}))
                return p["token"]

        token = run(main())
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    out = stream.getvalue()
    assert "webhooks" in out or "interactions" in out  # discord.py did log its requests at DEBUG
    assert token not in out and "fake-token" not in out
    assert "[token]" in out


# ---- 4. a failed write is retried, reported, and loses no vote ----------------------------------------------


def test_a_locked_database_loses_no_result_and_no_vote(bot_models: Path, tmp_path: Path, caplog):
    import sqlite3

    from test_feedback import react, settle

    reports: list[str] = []
    path = tmp_path / "muse.sqlite3"

    async def main():
        async with harness(bot_models, database={"path": str(path), "retry_seconds": 0.2}) as (fake, bot, P):
            async def report(text):
                reports.append(text)

            bot.report_to_admins = report
            await bot.store._db.execute("PRAGMA busy_timeout = 100")  # give up quickly (the default waits 5 s)
            other = sqlite3.connect(path, isolation_level=None)  # another program holds the write lock
            other.execute("BEGIN EXCLUSIVE")
            recs = [await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 4, "seed": s}))
                    for s in range(3)]
            await settle()
            mids = [int(r.response["id"]) for r in recs]
            lost_before = [await bot.store.get_result(message_id=m) for m in mids]
            await react(bot, "add", P.reaction_add(mids[0], "👍", user_id=77))  # a vote while it is locked
            waiting = len(bot.pending_writes)
            other.execute("ROLLBACK")  # the lock is released
            other.close()
            for _ in range(100):
                if not len(bot.pending_writes):
                    break
                await asyncio.sleep(0.05)
            rows = [await bot.store.get_result(message_id=m) for m in mids]
            vote = await bot.store.vote_of(rows[0].id, 77)
            await settle()
            return recs, lost_before, waiting, rows, vote

    with caplog.at_level(logging.WARNING):
        recs, lost_before, waiting, rows, vote = run(main())
    assert all(not is_ephemeral(r) for r in recs)  # the members got their grids
    assert lost_before == [None, None, None] and waiting == 4  # three results and the vote, kept in memory
    assert [r.seed for r in rows] == [0, 1, 2]  # stored once the lock was released
    assert vote == 1  # the vote cast meanwhile was kept and applied
    assert len(reports) == 2 and "could not save" in reports[0] and "locked" in reports[0]
    assert "works again" in reports[1] and "4 results and votes" in reports[1]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# ---- 3. no hang on an error path ----------------------------------------------------------------------------


def _python(code: str, timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_a_bot_that_fails_to_start_does_not_hang_the_process(bot_models: Path):
    code = f"""
        import asyncio, sys
        sys.path.insert(0, "tests/e2e")
        from bench.fakediscord import FakeDiscord, GUILD_ID
        from museharness import harness

        async def main():
            fake = await FakeDiscord().start()
            fake.fail("PUT", "/commands", 403, 50001, "Missing Access")
            try:
                async with harness({str(bot_models)!r}, fake=fake, discord={{"test_guild": GUILD_ID}}):
                    pass
            except Exception as e:
                print("failed:", type(e).__name__)
            await fake.stop()

        asyncio.run(main())
    """
    t0 = time.monotonic()
    proc = _python(code, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "failed: GuildSyncError" in proc.stdout
    assert time.monotonic() - t0 < 120


def test_bench_feedback_without_a_dataset_exits(bot_models: Path, tmp_path: Path):
    env = {"MUSE_DATA_DIR": str(tmp_path / "nothing-here")}
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "bench", "feedback", "--kind", "image", "--rater",
                           "bench.raters:warm_colours", "--rounds", "1", "--per-round", "2", "--models",
                           str(bot_models)], cwd=ROOT, capture_output=True, text=True, timeout=180,
                          env={**os.environ, **env})
    assert proc.returncode == 2, (proc.stdout[-1000:], proc.stderr[-2000:])
    assert "muse prepare images" in proc.stderr and "Traceback" not in proc.stderr


# ---- soak: 500 interactions at 50 per second ----------------------------------------------------------------


def test_soak_500_interactions_at_50_per_second(bot_models: Path, caplog):
    """Every interaction is acknowledged within 3 s and answered; nothing unhandled reaches the log. Members
    past the queue's bound get the ephemeral "busy" answer, which is the bound doing its job."""
    rate, total = 50, 500

    async def main():
        async with harness(bot_models, limits={"cooldown_rate": 1000}) as (fake, bot, _):
            sent: dict[str, float] = {}
            tokens = []
            t0 = time.perf_counter()
            for i in range(total):
                P = Payloads(user_id=5000 + i % 97, locale="zh-CN" if i % 5 == 0 else "en-US")
                if i % 3 == 2:
                    p = P.command("poem", {"lang": "en" if i % 2 else "zh", "seed": i})
                else:
                    p = P.command("image", {"theme": ("circles", "squares", "triangles")[i % 3], "count": 1 + i % 4,
                                            "seed": i})
                await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
                sent[p["token"]] = time.perf_counter()
                bot._connection.parse_interaction_create(p)
                tokens.append(p["token"])
            finals = await asyncio.gather(*(fake.result_of(tok, timeout=120) for tok in tokens))
            acks = {}
            for tok in tokens:
                first = next(r for r in fake.for_token(tok) if r.path.endswith("/callback"))
                acks[tok] = first.t - sent[tok]
            return tokens, finals, acks, time.perf_counter() - t0

    with caplog.at_level(logging.WARNING):
        tokens, finals, acks, wall = run(main())
    busy = [f for f in finals if is_ephemeral(f) and ("busy" in _text(f).lower() or "很忙" in _text(f))]
    other_errors = [f for f in finals if is_ephemeral(f) and f not in busy]
    assert len(finals) == total
    assert max(acks.values()) < 3.0, max(acks.values())
    assert not other_errors, [_text(f) for f in other_errors[:3]]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    print(f"soak: {total} interactions in {wall:.1f} s; ack max {max(acks.values()) * 1000:.0f} ms; "
          f"{len(busy)} busy; {total - len(busy)} results")


# ---- a candidate that passes the gate but cannot be loaded -------------------------------------


def _passing_candidate_whose_weights_rot(spec: dict) -> dict:
    """A trainer worker job: the candidate (a copy of its parent) passes the gate, then its weights are damaged on
    disk before the bot's process loads it for the hot swap."""
    from genmodels import checkpoints
    from genmodels.feedback.trainer import save_candidate

    root = Path(spec["root"])
    tensors, card = checkpoints.load_version(root, spec["model"], spec["parent"])
    keep = {k: v for k, v in card.items() if k not in ("name", "version", "created", "sha256")}
    vdir = save_candidate(spec, checkpoints.version_dir(root, spec["model"], spec["parent"]), tensors, keep)
    checkpoints.update_card(vdir, metrics={"precision": 0.5}, gate={"passed": True, "reasons": []})
    weights = vdir / checkpoints.MODEL_FILE
    data = bytearray(weights.read_bytes())
    data[-64:] = bytes(b ^ 0xFF for b in data[-64:])
    weights.write_bytes(bytes(data))
    return {"version": spec["version"], "passed": True, "reason": "passed: precision 0.5",
            "metrics": {"precision": 0.5}, "parent_metrics": {"precision": 0.5}, "preference": None, "warning": None}


def test_a_candidate_that_cannot_be_loaded_after_the_gate_is_reported_to_the_admin(bot_models: Path, tmp_path: Path,
                                                                                   monkeypatch, caplog):
    import shutil

    from genmodels.feedback.trainer import Trainer
    from test_feedback import react

    models = tmp_path / "models"
    shutil.copytree(bot_models, models)  # the trainer writes v0002 next to v0001: not in the shared models
    monkeypatch.setattr(Trainer, "job", staticmethod(_passing_candidate_whose_weights_rot))
    trainer = {"enabled": True, "min_feedback": 1000, "every_hours": 0.0}
    reports: list[str] = []

    async def main():  # the base, trained on this server's votes as the owner chose to share them
        async with harness(models, trainer=trainer, database={"path": str(tmp_path / "muse.sqlite3")},
                           taste={"share_with_base": True}) as (fake, bot, P):
            async def report(text):
                reports.append(text)

            bot.trainer.report = report
            img = await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 4, "seed": 1}))
            await react(bot, "add", P.reaction_add(int(img.response["id"]), "👍", user_id=101))
            out = {"train": await invoke(fake, bot, P.command("muse", {"kind": "dcgan", "scope": "base"},
                                                                 sub="model train"), 120)}
            out["status"] = await invoke(fake, bot, P.command("muse", {"scope": "base"}, sub="model status"))
            out["image"] = await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 1, "seed": 1}))
            out["run"] = await bot.store.last_run("dcgan")
            out["served"] = await bot.store.served_version("dcgan")
            return out

    with caplog.at_level(logging.WARNING):
        out = run(main())
    text = _text(out["train"])
    assert is_ephemeral(out["train"]) and "Error id" not in text and "isn't installed" not in text
    assert text.startswith("❌ **dcgan**: the candidate v0002 passed the gate but could not be loaded: "), text
    assert "checksum" in text and "The served model is unchanged: still serving v0001" in text
    status = {f["name"]: f["value"] for f in body(out["status"])["embeds"][0]["fields"]}["dcgan"]
    assert "Serving **v0001**" in status and "v0002 (refused: passed the gate" in status and "**failed**" in status
    assert "could not be loaded" in status
    image = {f["name"]: f["value"] for f in body(out["image"])["embeds"][0]["fields"]}
    assert image["Model"] == "dcgan/v0001"
    assert out["run"]["outcome"] == "failed" and out["run"]["finished_at"] and out["served"] == "v0001"
    assert len(reports) == 1 and "passed the gate but could not be loaded" in reports[0]
    # one error line for the failed load, with what happened; no unexpected error (no error id)
    assert not [r for r in caplog.records if "unexpected error" in r.getMessage()]


# ---- a damaged database is found at open -------------------------------------------------------


def test_a_damaged_database_is_found_at_open_and_muse_serves_without_it(bot_models: Path, tmp_path: Path, caplog):
    from test_feedback import react

    from tests.test_store import corrupt_database, file_hashes

    path = tmp_path / "muse.sqlite3"
    before = corrupt_database(path)

    async def main():
        async with harness(bot_models, database={"path": str(path)}) as (fake, bot, P):
            out = {"store": bot.store, "image": await invoke(fake, bot, P.command(
                "image", {"theme": "circles", "count": 4, "seed": 1}))}
            await react(bot, "add", P.reaction_add(int(out["image"].response["id"]), "👍", user_id=101))
            out["poem"] = await invoke(fake, bot, P.command("poem", {"lang": "en", "seed": 2}))
            out["stats"] = await invoke(fake, bot, P.command("muse", sub="stats"))
            out["stats_zh"] = await invoke(fake, bot, Payloads(locale="zh-CN").command("muse", sub="stats"))
            out["export"] = await invoke(fake, bot, P.command("muse", sub="feedback export"))
            out["session"] = await invoke(fake, bot, P.command("session", {"kind": "image"}, sub="start"))
            return out

    with caplog.at_level(logging.INFO):
        out = run(main())
    assert out["store"] is None
    # members' commands get their results (not recorded)
    assert not is_ephemeral(out["image"]) and out["image"].files
    assert not is_ephemeral(out["poem"]) and (_text(out["poem"]) or body(out["poem"]).get("embeds"))
    # the commands that need the store get the usual answer, not an error id
    for name in ("stats", "export", "session"):
        assert is_ephemeral(out[name]) and "Feedback isn't being recorded" in _text(out[name]), name
    assert "没有记录反馈" in _text(out["stats_zh"])
    # one clear warning for the owner: which file, that nothing was written, what to do
    said = [r for r in caplog.records if "is damaged" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING
    text = said[0].getMessage()
    assert str(path) in text and "backup" in text and ".recover" in text and "serves without it" in text
    assert not _errors(caplog) and not [r for r in caplog.records if r.exc_info]
    # and the damaged files were never written
    assert file_hashes(path) == before
