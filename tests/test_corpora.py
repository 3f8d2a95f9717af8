"""`muse prepare poems`: the big corpora's dataset and card, and the fallback to Debian's fortunes files (asked for).

The corpora's own readers are tested in tests/test_gutenberg.py and tests/test_chinese_poetry.py; here the
fetch-and-build steps are replaced, so nothing is downloaded.
"""

from __future__ import annotations

import json

import pytest

from genmodels.data import DataError, chinese_poetry, corpora, poems
from genmodels.data.poems import load_poem_dataset

SPLITS = {"train": [["床前明月光", "疑是地上霜"], ["举头望明月", "低头思故乡"]], "dev": [["白日依山尽", "黄河入海流"]],
          "heldout": [["欲穷千里目", "更上一层楼"]]}
CARD = {"source": "chinese-poetry 2.0.1 (npm): 全唐诗, 全宋诗", "integrity": "sha512-abc", "poems_in": 5,
        "poems_kept": 4, "licence": "MIT (package); public domain (poems)"}


def fake_fortunes(folder):
    """Debian's fortunes-zh files, in their shape: colour-escaped title and author lines, entries split by %."""
    folder.mkdir()
    entry = "\x1b[32m《静夜思》\x1b[m\n\x1b[33m作者：李白\x1b[m\n床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n"
    entries = [entry.replace("床前", f"床前{i}") if i else entry for i in range(6)]
    for name in ("tang300", "song100", "chinese"):
        (folder / name).write_text("%\n".join(entries), "utf-8")
    return folder


def test_the_big_corpus_is_written_with_its_card(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(chinese_poetry, "fetch_tarball", lambda cache: calls.append(("fetch", cache)))
    monkeypatch.setattr(chinese_poetry, "build",
                        lambda cache, seed, progress: (calls.append(("build", seed)), (SPLITS, CARD))[1])
    out = corpora.build_corpus("zh", tmp_path / "data", seed=5, progress=False, say=calls.append)
    assert calls == [("fetch", tmp_path / "data" / "cache"), ("build", 5)]
    ds = load_poem_dataset(out)
    assert ds.poems == SPLITS and ds.seed == 5 and ds.sha256 == "sha512-abc"
    card = json.loads((tmp_path / "data" / "poems-zh.card.json").read_text("utf-8"))
    assert card["card"] == CARD and card["stats"]["train"] == {"poems": 2, "lines": 4, "chars": 20}
    assert "splits" not in card  # the card is the small, readable part


def _no_npm(cache):
    raise DataError("npm is needed to download the chinese-poetry corpus; install it with: sudo apt-get "
                    "install npm (or build the small Chinese corpus from Debian's fortunes-zh instead)")


def test_a_corpus_that_cannot_be_fetched_is_an_error_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(chinese_poetry, "fetch_tarball", _no_npm)
    monkeypatch.setattr(poems, "FORTUNES_DIR", fake_fortunes(tmp_path / "fortunes"))
    said: list[str] = []
    with pytest.raises(DataError, match="apt-get install npm"):
        corpora.build_corpus("zh", tmp_path / "data", progress=False, say=said.append)
    assert said == [] and not (tmp_path / "data" / "poems-zh.json").exists()


def test_a_corpus_that_cannot_be_fetched_falls_back_to_fortunes_when_asked_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(chinese_poetry, "fetch_tarball", _no_npm)
    monkeypatch.setattr(poems, "FORTUNES_DIR", fake_fortunes(tmp_path / "fortunes"))
    said: list[str] = []
    out = corpora.build_corpus("zh", tmp_path / "data", progress=False, fallback=True, say=said.append)
    assert len(said) == 2 and "apt-get install npm" in said[0] and "Debian" in said[1]
    ds = load_poem_dataset(out)
    # six poems from each of tang300 and song100; the "chinese" file's copies of them are dropped as seen
    assert sum(len(p) for p in ds.poems.values()) == 12 and ds.lines("train")[0].endswith("明月光")
    assert all("\x1b" not in line for line in ds.lines("train"))


def test_fortunes_on_request_and_bad_names(tmp_path, monkeypatch):
    monkeypatch.setattr(chinese_poetry, "fetch_tarball", lambda cache: pytest.fail("nothing is fetched"))
    monkeypatch.setattr(poems, "FORTUNES_DIR", fake_fortunes(tmp_path / "fortunes"))
    assert load_poem_dataset(corpora.build_corpus("zh", tmp_path / "d", corpus="fortunes", progress=False)).lang == "zh"
    with pytest.raises(DataError, match="Unknown corpus"):
        corpora.build_corpus("zh", tmp_path / "d", corpus="wiki")
    with pytest.raises(DataError, match="Unknown poem language"):
        corpora.build_corpus("fr", tmp_path / "d")
