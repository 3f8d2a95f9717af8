"""The training benchmark's code path, on the tiny shapes set (the figures themselves live in docs/)."""

import pytest

from bench.train import run


def test_bench_train_runs_both_loops(shapes_npz):
    res = run(steps=2, warmup=1, device="cpu", data_path=shapes_npz)
    assert res["batch"] == 64 and res["timed_steps"] == 2
    assert res["reference_img_per_s"] > 0 and res["ours_img_per_s"] > 0
    # the ratio of the unrounded rates, so within rounding of the ratio of the printed ones
    assert res["speedup"] == pytest.approx(res["ours_img_per_s"] / res["reference_img_per_s"], abs=0.02)
