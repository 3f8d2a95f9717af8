"""`muse bench web` runs end to end on the tiny models: a gallery in chromium, its timings per load."""

from __future__ import annotations

from bench.web import run


def test_the_web_bench_loads_the_gallery_and_reports_its_paint(tiny_models):
    out = run(results=6, loads=2, models=str(tiny_models))
    assert [r["cards"] for r in out["per_load"]] == [6, 6]
    assert [r["cold"] for r in out["per_load"]] == [True, False]
    assert 0 < out["first_contentful_paint_ms"]["cold"] < 30_000
    assert out["all_pictures_ms"]["cold"] > 0 and out["all_pictures_ms"]["warm_median"] > 0
    assert set(out["target"]) == {"first_contentful_paint_ms<300"}
