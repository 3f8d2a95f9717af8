"""Settings layering, create_bot(), and the `muse` command's Discord side (run, sync, bench serve)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from bench.fakediscord import APP_ID, GUILD_ID, FakeDiscord
from bot import create_bot
from bot.cli import build_parser, main, sync_commands
from bot.settings import SettingsError, load_settings, token_from_env
from museharness import make_settings, run


def test_layers_file_then_environment(tmp_path: Path):
    user = tmp_path / "muse.toml"
    user.write_text('[database]\npath = "from-file.db"\n[discord]\ntest_guild = 42\n[limits]\ncell_px = 128\n', "utf-8")
    s = load_settings(user, env={})
    assert s.database.path == "from-file.db" and s.discord.test_guild == 42 and s.limits.cell_px == 128
    assert s.engine.max_queue == 64  # untouched keys keep config/default.toml's values
    s = load_settings(env={"MUSE_CONFIG": str(user), "MUSE_DATABASE_PATH": "/srv/muse.db",
                           "MUSE_DISCORD_ALLOW_DMS": "false", "MUSE_ENGINE_PER_USER": "2"})
    assert s.database.path == "/srv/muse.db" and s.discord.test_guild == 42
    assert s.discord.allow_dms is False and s.engine.per_user == 2
    assert "$MUSE_DATABASE_PATH" in s.sources and str(user) in s.sources


@pytest.mark.parametrize("text, env, match", [
    ("[engine]\nmax_queue = 'lots'\n", {}, "engine.max_queue must be a int"),
    ("[engin]\nx = 1\n", {}, "unknown section"),
    ("[engine]\nspeed = 1\n", {}, "unknown setting engine.speed"),
    ("[engine\n", {}, "not valid TOML"),
    ("", {"MUSE_LIMITS_CELL_PX": "100"}, "multiple of 64"),
    ("", {"MUSE_ENGINE_PER_USER": "many"}, r"\$MUSE_ENGINE_PER_USER must be a int"),
])
def test_bad_settings_say_what_to_fix(tmp_path: Path, text, env, match):
    f = tmp_path / "s.toml"
    f.write_text(text, "utf-8")
    with pytest.raises(SettingsError, match=match):
        load_settings(f, env=env)


def test_create_bot_without_arguments_reads_the_environment(monkeypatch, tmp_path: Path):
    monkeypatch.chdir(tmp_path)  # no ./muse.toml here
    monkeypatch.setenv("MUSE_DISCORD_TEST_GUILD", "777")
    monkeypatch.setenv("MUSE_DATABASE_PATH", str(tmp_path / "x.db"))
    monkeypatch.setenv("DISCORD_TOKEN", "sekrit-token-value")
    bot = create_bot()
    assert bot.settings.discord.test_guild == 777 and bot.settings.database.path == str(tmp_path / "x.db")
    assert bot.engine.config.max_queue == bot.settings.engine.max_queue
    assert "sekrit" not in repr(bot.settings) and "sekrit" not in json.dumps(bot.settings.to_dict())
    assert token_from_env() == "sekrit-token-value" and token_from_env({"DISCORD_TOKEN": "  "}) is None


def test_run_without_a_token_is_one_friendly_paragraph(monkeypatch, capsys):
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "DISCORD_TOKEN" in err and "Traceback" not in err and "applications.commands" in err
    assert main(["sync"]) == 2


def test_parser_keeps_the_core_commands_and_adds_the_bot(capsys):
    p = build_parser()
    assert p.parse_args(["generate", "image", "--seed", "3"]).seed == 3
    assert p.parse_args(["sync", "--guild", "5"]).guild == 5
    args = p.parse_args(["bench", "serve", "--requests", "4", "--json"])
    assert args.what == "serve" and args.requests == 4 and args.json
    assert p.parse_args(["bench", "train"]).what == "train"
    with pytest.raises(SystemExit):
        p.parse_args(["bench", "nothing"])


def test_sync_registers_globally_or_in_a_guild(bot_models: Path, caplog):
    async def main_():
        fake = await FakeDiscord().start()
        try:
            settings = make_settings(bot_models)
            n_global = await sync_commands(settings, "a-secret-token")
            n_guild = await sync_commands(settings, "a-secret-token", guild=GUILD_ID)
            return n_global, n_guild, [r for r in fake.requests if r.method == "PUT"]
        finally:
            await fake.stop()

    with caplog.at_level(logging.DEBUG):
        n_global, n_guild, puts = run(main_())
    assert n_global == n_guild == 7  # image, poem, interpolate, muse, session and the two message menus
    assert puts[0].path.endswith(f"/applications/{APP_ID}/commands")
    assert puts[1].path.endswith(f"/applications/{APP_ID}/guilds/{GUILD_ID}/commands")
    assert "a-secret-token" not in caplog.text


def test_bench_serve_reports_the_figures(bot_models: Path, monkeypatch):
    from bench.serve import run as bench_run

    monkeypatch.setenv("MUSE_MODELS_DIR", str(bot_models))
    res = bench_run(requests=6, count=2)
    for phase in ("batched", "batch_size_1"):
        r = res[phase]
        assert r["ok"] == 6 and r["requests_per_s"] > 0
        assert 0 <= r["ack_ms"]["p50"] <= r["ack_ms"]["p99"] <= r["result_ms"]["p99"]
        assert r["loop_lag_ms"]["p99"] >= 0
        cpu = r["cpu_s"]  # the split the speedup bound is computed from
        assert 0 < cpu["event_loop"] <= cpu["process"] and 0 < cpu["inference"]
    assert res["speedup_bound_if_inference_were_free"] > 0 and 0 < res["inference_share_of_cpu_batch_size_1"] <= 1
    assert set(res["forward_ms_per_image_by_batch"]["fp32"]) == {"1", "2", "4", "16"}  # sized to the 12 images asked
    assert set(res["forward_gflops_fp32_by_batch"]) == {"1", "2", "4", "16"} and res["forward_gflop_per_image"] > 0
    assert res["matmul_peak_gflops"] > 0 and res["inference_speedup_bound_from_batching"] > 0
    assert 0 < res["speedup_bound_from_batching_end_to_end"] <= max(1.0, res["inference_speedup_bound_from_batching"])
    assert res["batch_size_1"]["batches"] == 6 and res["batched"]["batches"] <= 6
    assert res["model"] == "dcgan/v0001" and res["weights"] == "trained" and res["speedup"] > 0
    assert res["inference_only"]["batch_size_1"]["batches"] == 6 and res["inference_only"]["speedup"] > 0
    assert set(res["targets"]) == {"ack_under_100ms", "loop_lag_p99_under_50ms", "batched_at_least_2x",
                                   "inference_batched_at_least_2x"}
