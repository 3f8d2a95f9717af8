"""The `muse` command line: generation writes the promised files, and bad input gets one friendly line."""

import json
import shutil

import pytest
from PIL import Image

from genmodels import checkpoints
from genmodels.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_generate_image_grid_is_deterministic(tiny_models, tmp_path, capsys):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for out in (a, b):
        code, stdout, _ = run(capsys, "generate", "image", "--theme", "squares", "--count", "4", "--seed", "7",
                              "--out", str(out), "--models", str(tiny_models))
        assert code == 0 and "seed 7" in stdout
    assert a.read_bytes() == b.read_bytes()
    im = Image.open(a)
    assert im.size == (128, 128) and im.mode == "RGBA"  # a 2×2 grid of 64 px cells, with alpha


def test_generate_morph_writes_a_gif(tiny_models, tmp_path, capsys):
    src = tmp_path / "a.png"
    Image.new("RGBA", (40, 40), (255, 200, 0, 255)).save(src)
    out = tmp_path / "m.gif"
    code, _, err = run(capsys, "generate", "morph", "--from", str(src), "--to", str(src), "--frames", "8",
                       "--out", str(out), "--models", str(tiny_models))
    assert code == 0, err
    assert Image.open(out).format == "GIF"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["generate", "image", "--theme", "dinosaurs"], "Unknown theme"),
        (["generate", "morph", "--from", "hello", "--to", "world"], "neither an image file nor a single emoji"),
        (["generate", "image", "--count", "99"], "count must be between"),
    ],
)
def test_bad_input_is_one_friendly_line(tiny_models, tmp_path, capsys, argv, message):
    code, _, err = run(capsys, *argv, "--models", str(tiny_models))
    assert code == 2 and message in err and "Traceback" not in err


def test_seed_out_of_range_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as e:
        main(["generate", "image", "--seed", str(2**40)])
    assert e.value.code == 2 and "seed must be between" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "textvae", "--lang", "zh", "--polish"], "--polish continues a version; add --init-from N"),
        (["train", "textvae", "--lang", "zh", "--init-from", "7", "--word-dropout", "1.5"], "--word-dropout must"),
        (["train", "dcgan", "--polish"], "--polish is for textvae"),
        (["train", "vae", "--word-dropout", "0.1"], "--word-dropout is for textvae"),
    ],
)
def test_train_options_that_do_not_fit_are_refused_before_any_work(tmp_path, argv, message):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--data", str(tmp_path / "none"), "--models", str(tmp_path / "m"), "--runs", str(tmp_path / "r")])
    assert message in str(e.value.code)
    assert not (tmp_path / "m").exists() and not (tmp_path / "r").exists()


def test_corrupt_or_pickled_checkpoint_is_refused(tiny_models, tmp_path, capsys):
    import torch

    root = tmp_path / "models"
    shutil.copytree(tiny_models, root)
    weights = root / "dcgan" / "v0001" / checkpoints.MODEL_FILE
    torch.save({"G.out.weight": torch.zeros(1)}, weights)  # someone drops a pickle in place of the weights
    code, _, err = run(capsys, "generate", "image", "--models", str(root), "--out", str(tmp_path / "x.png"))
    assert code == 2 and "pickle" in err and not (tmp_path / "x.png").exists()


def test_prepare_images_from_a_folder_and_errors(tmp_path, capsys):
    from tests.conftest import draw_shapes

    src = draw_shapes(tmp_path / "src", per_label=4)
    code, out, _ = run(capsys, "prepare", "images", "--source", str(src), "--out", str(tmp_path / "d"))
    assert code == 0 and "3 labels" in out and (tmp_path / "d" / "images.npz").exists()
    code, _, err = run(capsys, "prepare", "images", "--source", str(tmp_path / "nope"), "--out", str(tmp_path / "d"))
    assert code == 2 and "not a folder" in err


def test_eval_images_reports_metrics(tiny_models, shapes_npz, capsys):
    code, out, err = run(capsys, "eval", "vae", "--json", "--models", str(tiny_models), "--data", str(shapes_npz.parent))
    assert code == 0, err
    res = json.loads(out)
    assert 0 <= res["feature_net"]["heldout_accuracy"] <= 1  # measured at the end of training, kept in the card
    assert res["vae"]["neg_elbo_nats"] > 0 and 0 <= res["vae"]["classifier_accuracy_originals"] <= 1
    code, out, err = run(capsys, "eval", "dcgan", "--json", "--models", str(tiny_models), "--data", str(shapes_npz.parent))
    assert code == 0, err
    d = json.loads(out)["dcgan"]
    assert 0 <= d["precision"] <= 1 and 0 <= d["recall"] <= 1 and set(d["theme_accuracy"]) == {"circles", "squares", "triangles"}
    assert set(d["sheet_near_copies"]["pairs"]) == {"circles", "squares", "triangles"} and "styles" not in d
    assert set(d["targets"]) == {"precision>=0.8", "recall>=0.65", "near_copy_rate<=0.05",
                                 "theme_accuracy>=heldout_every_theme", "no_sheet_row_near_copies"}


def test_eval_and_generate_in_each_style(styled_models, styled_npz, tmp_path, capsys):
    code, out, err = run(capsys, "eval", "dcgan", "--json", "--models", str(styled_models), "--data",
                         str(styled_npz.parent))
    assert code == 0, err
    d = json.loads(out)["dcgan"]
    assert set(d["styles"]) == {"noto", "openmoji"} and d["version"] == "dcgan/v0002"
    for m in d["styles"].values():  # each style against its own held-out images
        assert 0 <= m["precision"] <= 1 and m["theme_diversity"] > 0 and m["sheet_near_copies"] >= 0
    code, out, err = run(capsys, "generate", "image", "--theme", "circles", "--style", "openmoji", "--seed", "3",
                         "--models", str(styled_models), "--out", str(tmp_path / "g.png"))
    assert code == 0 and "in openmoji" in out and (tmp_path / "g.png").exists()
    code, _, err = run(capsys, "generate", "image", "--theme", "circles", "--style", "twemoji",
                       "--models", str(styled_models), "--out", str(tmp_path / "h.png"))
    assert code == 2 and "does not draw the style 'twemoji'" in err


def test_generated_files_go_to_out_by_default(tiny_models, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the README's examples write into ./out (git-ignored), made when missing
    code, stdout, err = run(capsys, "generate", "image", "--theme", "squares", "--models", str(tiny_models))
    assert code == 0, err
    assert "wrote out/grid.png" in stdout and Image.open(tmp_path / "out" / "grid.png").format == "PNG"


def test_a_style_missing_from_the_prepared_emoji_says_how_to_get_it(styled_models, styled_npz, tmp_path, capsys):
    src = tmp_path / "a.png"
    Image.new("RGBA", (40, 40), (255, 200, 0, 255)).save(src)
    code, _, err = run(capsys, "generate", "morph", "--from", str(src), "--to", "🐶", "--to-style", "twemoji",
                       "--models", str(styled_models), "--data", str(styled_npz.parent), "--out", str(tmp_path / "m.gif"))
    assert code == 2 and "hold no 'twemoji' style" in err
    assert "`muse prepare images --styles noto,openmoji,twemoji`" in err and "Traceback" not in err
