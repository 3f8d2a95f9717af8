import json

import numpy as np
import pytest
import torch

from genmodels.data import DataError
from genmodels.data import emoji
from genmodels.data.emoji import build_folder_dataset, from_model, load_image_dataset, load_image_rgba, to_model

needs_emoji = pytest.mark.skipif(
    not (emoji.FONT_PATH.exists() and emoji.EMOJI_TEST_PATH.exists()),
    reason="needs Debian's fonts-noto-color-emoji and unicode-data (installed by .ci/run)",
)


def test_folder_dataset_is_reproducible_and_labelled(shapes_npz, tmp_path):
    d = load_image_dataset(shapes_npz)
    assert d.train_images.shape[1:] == (64, 64, 4) and d.train_images.dtype == np.uint8
    assert d.stats["label_names"] == ["circles", "squares", "triangles"]
    assert len(d.train_images) + len(d.heldout_images) == 36 and len(d.heldout_images) == 9
    assert d.train_images[..., 3].min() == 0  # transparency kept (the 48×40 shapes are padded to square)
    from tests.conftest import draw_shapes

    again = tmp_path / "again.npz"
    build_folder_dataset(draw_shapes(tmp_path / "src"), again, seed=0, heldout=0.25)
    d2 = load_image_dataset(again)
    assert np.array_equal(d.heldout_chars, d2.heldout_chars)
    assert np.array_equal(d.train_images, d2.train_images)


def test_folder_dataset_has_one_style(shapes_npz):
    d = load_image_dataset(shapes_npz)
    assert d.style_names == ["folder"] and d.stats["style_names"] == ["folder"]
    assert d.train_styles.shape == d.train_labels.shape and not d.train_styles.any() and not d.heldout_styles.any()
    assert json.loads(shapes_npz.with_name("images.card.json").read_text("utf-8")) == d.stats


def test_a_dataset_written_before_styles_loads_as_noto(tmp_path):
    images = np.zeros((3, 64, 64, 4), np.uint8)
    old = dict(train_images=images[:2], train_labels=np.array([2, 0]), train_chars=np.array(["🐱", "😀"]),
               heldout_images=images[2:], heldout_labels=np.array([3]), heldout_chars=np.array(["🍎"]))
    np.savez_compressed(tmp_path / "old.npz", **old,
                        stats=np.array(json.dumps({"source": "emoji", "label_names": emoji.GROUPS})))
    d = load_image_dataset(tmp_path / "old.npz")
    assert d.style_names == list(emoji.STYLES) and d.style_names[0] == "noto"
    assert d.train_styles.tolist() == [0, 0] and d.heldout_styles.tolist() == [0] and d.n_labels == 9
    np.savez_compressed(tmp_path / "old_folder.npz", **old,
                        stats=np.array(json.dumps({"source": "/my/pics", "label_names": ["a", "b", "c", "d"]})))
    assert load_image_dataset(tmp_path / "old_folder.npz").style_names == ["folder"]


def test_folder_dataset_errors_are_friendly(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        build_folder_dataset(tmp_path / "missing", tmp_path / "o.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        build_folder_dataset(tmp_path / "empty", tmp_path / "o.npz")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "fake.png").write_bytes(b"this is not a png")
    with pytest.raises(DataError, match="readable image"):
        build_folder_dataset(bad, tmp_path / "o.npz")
    with pytest.raises(DataError, match="not an image"):
        load_image_rgba(bad / "fake.png")
    (tmp_path / "broken.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="muse prepare images"):
        load_image_dataset(tmp_path / "broken.npz")


def test_premultiplied_round_trip():
    rgba = np.zeros((1, 64, 64, 4), np.uint8)
    rgba[0, 10:20, 10:20] = (200, 40, 10, 255)
    rgba[0, 30:40, 30:40] = (90, 180, 250, 128)
    rgba[0, 50:, 50:] = (255, 255, 255, 0)  # colour under full transparency is meaningless
    x = to_model(rgba)
    assert x.shape == (1, 4, 64, 64) and x.min() >= -1 and x.max() <= 1
    assert torch.all(x[0, :3, 50:, 50:] == -1)  # premultiplied: transparent pixels are black
    back = from_model(x)
    assert np.abs(back[0, 10:20, 10:20].astype(int) - rgba[0, 10:20, 10:20]).max() <= 1
    assert np.abs(back[0, 30:40, 30:40].astype(int) - rgba[0, 30:40, 30:40]).max() <= 2
    assert back[0, 50:, 50:, 3].max() == 0


def test_theme_names():
    assert emoji.theme_index("animals") == 2
    assert emoji.theme_index("Food & Drink") == 3
    with pytest.raises(ValueError, match="smileys"):
        emoji.theme_index("dinosaurs")


@needs_emoji
def test_emoji_list_and_rendering():
    entries = emoji.parse_emoji_test()
    assert {e.group for e in entries} == set(range(9))
    cat = next(e for e in entries if e.char == "🐱")
    assert emoji.GROUPS[cat.group] == "Animals & Nature"
    toned = next(e for e in entries if e.has_skin_tone)
    assert toned.base != toned.char and all(ord(c) not in emoji.SKIN_TONES for c in toned.base)
    im = emoji.EmojiRenderer().render("🐱")
    assert im.size == (64, 64) and im.mode == "RGBA"
    alpha = np.asarray(im)[..., 3]
    assert alpha[0, 0] == 0 and alpha[32, 32] == 255


@needs_emoji
def test_emoji_dataset_holds_out_by_base(tmp_path):
    stats = emoji.build_emoji_dataset(tmp_path / "e.npz", skin_tones=True, limit=400, heldout=0.2)
    d = load_image_dataset(tmp_path / "e.npz")
    assert stats["n_train"] == len(d.train_images) and stats["n_heldout"] == len(d.heldout_images) > 0
    base = lambda c: "".join(ch for ch in str(c) if ord(ch) not in emoji.SKIN_TONES)
    assert not {base(c) for c in d.train_chars} & {base(c) for c in d.heldout_chars}


def test_image_models_read_the_noto_part_of_a_four_style_dataset(tmp_path):
    """Loading keeps Noto's images (what the evaluation measures on) unless asked for every style, as the DCGAN and
    the VAE ask; a style-conditioned model numbers the styles that have training images."""
    import numpy as np

    from genmodels.data.emoji import load_image_dataset
    from genmodels.data.emoji_sets import STYLES

    img = np.zeros((6, 64, 64, 4), dtype=np.uint8)
    styles = np.array([0, 1, 2, 3, 0, 1])
    arrays = {f"{s}_{w}": v for s in ("train", "heldout") for w, v in
              (("images", img), ("labels", np.arange(6)), ("chars", np.array(list("abcdef"))), ("styles", styles))}
    np.savez(tmp_path / "images.npz", **arrays, style_names=np.array(STYLES),
             stats=np.array(json.dumps({"source": "emoji", "label_names": ["x"] * 6})))
    noto = load_image_dataset(tmp_path / "images.npz")
    assert noto.train_chars.tolist() == ["a", "e"] and noto.heldout_labels.tolist() == [0, 4]
    every = load_image_dataset(tmp_path / "images.npz", styles=None)
    assert len(every.train_images) == 6 and every.train_styles.tolist() == styles.tolist()
    assert every.styles_present == list(STYLES) and every.style_codes("heldout").tolist() == styles.tolist()
    two = load_image_dataset(tmp_path / "images.npz", styles=("twemoji", "openmoji"))
    assert two.styles_present == ["twemoji", "openmoji"] and two.style_codes("train").tolist() == [0, 1, 0]
