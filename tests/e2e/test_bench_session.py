"""`muse bench session`: a group session voted through to its winner on the tiny models, and its figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import build_parser

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("kind", ["image", "poem"])
def test_bench_session_plays_a_session_to_its_winner(bot_models: Path, kind: str):
    from bench.session import run as bench_run

    res = bench_run(kind=kind, lang="en", voters=6, rounds=2, candidates=4, models=str(bot_models))
    assert res["kind"] == kind and (res["lang"] == "en" if kind == "poem" else res["lang"] is None)
    assert res["voters"] == 6 and res["rounds"] == 2 and res["candidates"] == 4
    assert res["rounds_posted"] == 2
    assert (res["models"]["dcgan"] if kind == "image" else res["models"]["textvae-en"]).split("/")[1].startswith("v")
    assert res["outcome"]["status"] == "finished" and res["outcome"]["winner_posted"]
    if kind == "image":
        assert res["outcome"]["files"] == ["winner.png", "descent.gif"]
    # one close between rounds, timed from outside (the fake Discord) and inside the runner (whose span also
    # takes in storing the posted message's id, after the post reached Discord)
    assert len(res["close_to_post_ms"]) == 1 and len(res["runner_advance_s"]) == 1
    assert res["close_to_post_ms"][0] > 0 and res["runner_advance_s"][0] > 0
    assert res["close_to_post_ms_p50"] <= res["close_to_post_ms_max"] and res["close_to_final_ms"] > 0
    assert res["first_round_ms"] > 0
    assert res["votes"] >= 2 * 6 and res["votes_refused"] == 0  # every voter at least once per round, all counted
    assert res["burst"] == 5  # the five voters before the last press at once
    assert res["votes_stored"] == res["votes_expected"] == res["votes"]  # each press a distinct pick, each stored
    assert 0 <= res["votes_deferred"] <= res["votes"] and res["targets"]["every_vote_stored"]
    ack, confirmed = res["vote_ack_ms"], res["vote_confirmed_ms"]
    assert 0 < ack["p50"] <= ack["p99"] <= ack["max"] and ack["max"] <= confirmed["max"]
    assert isinstance(res["targets"]["votes_acknowledged_under_1s"], bool)
    assert 0 <= res["loop_lag_ms"]["p99"] <= res["loop_lag_ms"]["max"]
    assert res["torch_threads"] >= 1 and res["cpu_count"] >= 1
    assert isinstance(res["targets"]["next_round_under_2s"], bool)


def test_bench_session_command_line():
    args = build_parser().parse_args(["bench", "session", "--kind", "poem", "--lang", "zh", "--voters", "7",
                                      "--rounds", "4", "--candidates", "5", "--burst", "3", "--json"])
    assert (args.what, args.kind, args.lang, args.voters, args.rounds, args.candidates, args.burst, args.json) == (
        "session", "poem", "zh", 7, 4, 5, 3, True)
    defaults = build_parser().parse_args(["bench", "session"])
    assert (defaults.kind, defaults.voters, defaults.rounds, defaults.candidates, defaults.burst) == (
        "image", 50, None, 9, 0)
