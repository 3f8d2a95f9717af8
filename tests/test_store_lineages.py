"""The store's lineages: every server's versions, runs and votes apart, and the migration that files what an older
Muse stored under the base lineage and under the server each result came from."""

from __future__ import annotations

import aiosqlite

from genmodels.feedback.store import SCHEMA_VERSION, FeedbackStore, migrate

from test_store import async_test, image, raw


@async_test
async def test_migration_4_files_old_versions_runs_and_results_under_the_base(tmp_path):
    path = tmp_path / "old.sqlite3"
    async with aiosqlite.connect(path, isolation_level=None) as db:
        await migrate(db, target=3)
        await db.execute("INSERT INTO model_versions (model, version, status, created_at)"
                         " VALUES ('dcgan', 'v0001', 'retired', 1.0), ('dcgan', 'v0002', 'served', 2.0)")
        await db.execute("INSERT INTO trainer_runs (model, started_at, \"trigger\", outcome)"
                         " VALUES ('dcgan', 1.5, 'admin', 'promoted')")
        await db.execute("INSERT INTO results (id, message_id, guild_id, kind, model, model_version, created_at)"
                         " VALUES (1, 555, 9, 'image', 'dcgan', 'v0002', 3.0), (2, 556, NULL, 'image', 'dcgan',"
                         " 'v0002', 3.0)")
        await db.execute("INSERT INTO reactions (result_id, user_id, emoji, value, added_at)"
                         " VALUES (1, 7, '👍', 1, 4.0), (2, 8, '👎', -1, 4.0)")
    async with await FeedbackStore.open(path) as store:
        assert await store.served_version("dcgan") == "v0002"  # the base lineage
        assert await store.served_version("dcgan", server=9) is None  # server 9 has no version of its own
        assert [v["version"] for v in await store.model_versions("dcgan")] == ["v0001", "v0002"]
        assert (await store.last_run("dcgan"))["server"] == 0
        assert (await store.get_result(message_id=555)).lineage == 0
        # the votes are filed under the server their result was posted in (0: a DM)
        assert [i.user_id for i in await store.feedback("dcgan", server=9)] == [7]
        assert [i.user_id for i in await store.feedback("dcgan", server=0)] == [8]
        assert sorted(i.user_id for i in await store.feedback("dcgan")) == [7, 8]
        assert await store.integrity_check() == "ok"
    assert raw(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


@async_test
async def test_each_server_has_its_own_served_version_runs_and_votes(tmp_path):
    async with await FeedbackStore.open(tmp_path / "m.sqlite3") as store:
        await store.set_model_version("dcgan", "v0005", "served")
        await store.set_model_version("dcgan", "v0001", "served", server=1)
        await store.set_model_version("dcgan", "v0001", "served", server=2)
        await store.set_model_version("dcgan", "v0002", "served", server=1)  # retires server 1's v0001 only
        assert await store.served_version("dcgan") == "v0005"
        assert await store.served_version("dcgan", 1) == "v0002"
        assert await store.served_version("dcgan", 2) == "v0001"
        assert [(v["version"], v["status"]) for v in await store.model_versions("dcgan", 1)] == [
            ("v0001", "retired"), ("v0002", "served")]
        assert {(r["server"], r["version"]) for r in await store.served_versions()} == {
            (0, "v0005"), (1, "v0002"), (2, "v0001")}

        a = await image(store, 10, guild_id=1, model_version="v0002", lineage=1)
        b = await image(store, 20, guild_id=2, model_version="v0005")
        await store.add_reaction(10, 100, "👍")
        await store.add_reaction(20, 200, "👎")
        assert [i.result_id for i in await store.feedback("dcgan", server=1)] == [a]
        assert [i.result_id for i in await store.feedback("dcgan", server=2)] == [b]
        assert await store.new_feedback_by_server("dcgan") == {1: 1, 2: 1}
        run = await store.start_run("dcgan", "feedback", "v0003", server=1)
        assert await store.new_feedback_by_server("dcgan") == {2: 1}  # counted from server 1's run on
        assert (await store.last_run("dcgan", 1))["id"] == run and await store.last_run("dcgan", 2) is None
        assert list(await store.like_rates("dcgan", server=1)) == ["v0002"]
        assert list(await store.like_rates("dcgan", server=2)) == ["base v0005"]

        await store.log_model_change("dcgan", 1, "rollback", "v0001", actor_id=42, detail={"from": "v0002"})
        (change,) = await store.model_changes(1)
        assert (change["action"], change["actor_id"], change["detail"]) == ("rollback", 42, {"from": "v0002"})

        deleted = await store.delete_server_data(1)
        assert deleted["results"] == 1 and deleted["model_versions"] == 2 and deleted["trainer_runs"] == 1
        assert await store.get_result(message_id=10) is None
        assert await store.get_result(message_id=20) is not None  # server 2 keeps everything
        assert await store.served_version("dcgan", 2) == "v0001" and await store.model_changes(1) == []
        assert await store.feedback("dcgan", server=1) == []


@async_test
async def test_a_public_gallery_setting_is_the_server_s_own_and_goes_with_its_data(tmp_path):
    async with await FeedbackStore.open(tmp_path / "muse.sqlite3") as store:
        assert await store.web_public(5) is None  # private until its managers say otherwise
        await store.set_web_public(5, True, name="Cats", actor_id=1)
        await store.set_web_public(5, True, actor_id=2)  # no name given: the one it had stays
        assert (await store.web_public(5), await store.web_public(6)) == ("Cats", None)
        deleted = await store.delete_server_data(5)
        assert deleted["guild_settings"] == 1 and await store.web_public(5) is None
