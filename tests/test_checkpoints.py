import json
import pickle

import pytest
import torch

from genmodels import checkpoints
from genmodels.checkpoints import CheckpointError


def test_version_round_trip_is_fp16_and_carded(tmp_path):
    t = {"w": torch.randn(3, 4), "steps": torch.tensor([7])}
    v1 = checkpoints.save_version(tmp_path, "m", t, {"config": {"a": 1}, "metrics": {"x": 0.5}})
    v2 = checkpoints.save_version(tmp_path, "m", t, {"config": {"a": 2}})
    assert (v1.name, v2.name) == ("v0001", "v0002")
    assert checkpoints.list_versions(tmp_path, "m") == [1, 2]
    loaded, card = checkpoints.load_version(tmp_path, "m")
    assert card["version"] == 2 and card["config"] == {"a": 2}
    assert loaded["w"].dtype == torch.float16 and loaded["steps"].dtype == torch.int64
    torch.testing.assert_close(loaded["w"].float(), t["w"], atol=2e-3, rtol=1e-3)
    _, card1 = checkpoints.load_version(tmp_path, "m", version=1)
    assert card1["metrics"] == {"x": 0.5} and len(card1["sha256"]) == 64


def test_pickle_is_refused(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="pickle"):
        checkpoints.load_weights(tmp_path / "model.pt")
    (tmp_path / "raw.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError, match="pickle"):
        checkpoints.load_weights(tmp_path / "raw.pkl")


def test_safetensors_whose_header_length_starts_like_a_pickle_loads(tmp_path):
    """A header of 0x..80 bytes begins with the byte a pickle's PROTO opcode has; it is still safetensors."""
    import struct

    for n in range(1, 400):  # grow the key until the header length's low byte is 0x80
        path = tmp_path / "state.safetensors"
        checkpoints.save_weights(path, {"k" * n: torch.zeros(2)})
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80 and struct.unpack("<Q", path.read_bytes()[:8])[0] < 1000
    assert torch.equal(checkpoints.load_weights(path)["k" * n], torch.zeros(2))


def test_truncated_and_corrupt_files_are_refused(tmp_path):
    vdir = checkpoints.save_version(tmp_path, "m", {"w": torch.randn(64, 64)}, {})
    f = vdir / checkpoints.MODEL_FILE
    data = f.read_bytes()
    # A flipped byte in the tensor data: the format still parses, the card's checksum catches it.
    f.write_bytes(data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:])
    with pytest.raises(CheckpointError, match="checksum"):
        checkpoints.load_version(tmp_path, "m")
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a valid safetensors|truncated|could not be read"):
        checkpoints.load_weights(f)
    f.write_bytes(b"\x03")
    with pytest.raises(CheckpointError, match="truncated"):
        checkpoints.load_weights(f)
    f.write_bytes(b"\xff" * 64)
    with pytest.raises(CheckpointError):
        checkpoints.load_weights(f)


def test_missing_model_and_broken_card(tmp_path):
    with pytest.raises(CheckpointError, match="muse train"):
        checkpoints.load_version(tmp_path, "nothing")
    vdir = checkpoints.save_version(tmp_path, "m", {"w": torch.zeros(1)}, {})
    (vdir / checkpoints.CARD_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoints.read_card(vdir)


def test_resume_state_round_trips_optimizer_without_pickle(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.9))
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = {"model": model.state_dict(), "opt": opt.state_dict(), "rng": torch.get_rng_state(), "note": None}
    checkpoints.save_resume(tmp_path, state)
    meta = json.loads((tmp_path / checkpoints.RESUME_META).read_text())
    assert "state" in meta
    back = checkpoints.load_resume(tmp_path)
    opt2 = torch.optim.Adam(torch.nn.Linear(3, 2).parameters())
    opt2.load_state_dict(back["opt"])
    assert opt2.param_groups[0]["betas"] == (0.5, 0.9)
    torch.testing.assert_close(back["opt"]["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    torch.testing.assert_close(back["model"]["weight"], model.weight.detach())
    assert back["note"] is None
    checkpoints.clear_resume(tmp_path)
    assert checkpoints.load_resume(tmp_path) is None


def _version(root, name, gate="absent", **extra):
    """Save a version of ``name``; ``gate``: "absent" (no gate field), or the value of gate.passed."""
    card = {"config": {}, **extra}
    if gate != "absent":
        card["gate"] = {"passed": gate}
    return checkpoints.save_version(root, name, {"w": torch.randn(8, 8)}, card)


def test_default_load_passes_over_refused_pending_and_withdrawn_versions(tmp_path):
    _version(tmp_path, "m")  # v1: trained from scratch, no gate: servable
    v2 = _version(tmp_path, "m", gate=True)  # a promoted fine-tune
    _version(tmp_path, "m", gate=False)  # v3: refused by the gate
    _version(tmp_path, "m", gate=None)  # v4: a candidate the gate has not judged (yet)
    assert checkpoints.list_versions(tmp_path, "m") == [1, 2, 3, 4]
    assert checkpoints.load_version(tmp_path, "m")[1]["version"] == 2
    assert checkpoints.default_version(tmp_path, "m")[0] == 2

    checkpoints.withdraw(v2, "rolled back")  # e.g. by Trainer.rollback
    assert checkpoints.read_card(v2)["withdrawn"]["reason"] == "rolled back"
    assert checkpoints.load_version(tmp_path, "m")[1]["version"] == 1

    # An explicit request loads exactly that version, servable or not.
    for v in (2, 3, 4):
        assert checkpoints.load_version(tmp_path, "m", version=v)[1]["version"] == v

    # Nothing servable at all: a CheckpointError that says why, never a refused version.
    _version(tmp_path, "only-refused", gate=False)
    with pytest.raises(CheckpointError, match="refused by the gate"):
        checkpoints.load_version(tmp_path, "only-refused")


def test_corrupt_newest_version_is_skipped_with_a_warning(tmp_path, caplog):
    _version(tmp_path, "m")
    v2 = _version(tmp_path, "m")
    v3 = _version(tmp_path, "m")
    # v3: a flipped byte, caught by the card's checksum.
    f3 = v3 / checkpoints.MODEL_FILE
    data = f3.read_bytes()
    f3.write_bytes(data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:])
    # v2: cut short, and its card records no checksum (only reading the file finds out).
    f2 = v2 / checkpoints.MODEL_FILE
    f2.write_bytes(f2.read_bytes()[:-40])
    card = checkpoints.read_card(v2)
    del card["sha256"]
    checkpoints.write_json(v2 / checkpoints.CARD_FILE, card)

    with caplog.at_level("WARNING", logger="muse.checkpoints"):
        _, card = checkpoints.load_version(tmp_path, "m")
    assert card["version"] == 1
    warned = "\n".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert str(f3) in warned and "checksum" in warned
    assert str(f2) in warned

    with pytest.raises(CheckpointError, match="checksum"):
        checkpoints.load_version(tmp_path, "m", version=3)


def test_fallback_across_roots_to_the_shipped_weights(tmp_path, monkeypatch, caplog):
    """A models folder holding only an unjudged candidate and a corrupt copy does not hide the shipped model."""
    from genmodels import paths
    from genmodels.images import ImageGenerator

    shipped_v = checkpoints.list_versions(paths.SHIPPED, "dcgan")[-1]
    tensors, card = checkpoints.load_version(paths.SHIPPED, "dcgan", shipped_v)
    models = tmp_path / "models"
    keep = {k: v for k, v in card.items() if k not in ("name", "version", "created", "sha256")}
    checkpoints.save_version(models, "dcgan", tensors, {**keep, "gate": {"passed": None}}, version=shipped_v + 1)
    corrupt = checkpoints.save_version(models, "dcgan", tensors, keep, version=shipped_v + 2)
    (corrupt / checkpoints.MODEL_FILE).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"oops")
    monkeypatch.setenv("MUSE_MODELS_DIR", str(models))

    with caplog.at_level("WARNING", logger="muse.checkpoints"):
        gen = ImageGenerator.load()
    assert gen.version == f"dcgan/v{shipped_v:04d}"
    assert paths.resolve_model("dcgan") == (paths.SHIPPED, shipped_v)
    assert str(corrupt / checkpoints.MODEL_FILE) in caplog.text
    # explicit versions are still found wherever they are
    assert paths.find_model("dcgan", version=shipped_v + 1) == models
    assert ImageGenerator.load(version=shipped_v + 1).version == f"dcgan/v{shipped_v + 1:04d}"


def test_shipped_weights_stay_small_and_keep_one_rollback_version():
    """All shipped weights together stay within 100 MB, with at most the served version and one earlier."""
    from pathlib import Path

    root = Path(checkpoints.__file__).parent / "weights"
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert total <= 100 * 1000 * 1000, f"{total / 1e6:.1f} MB"
    for model in (p for p in root.iterdir() if p.is_dir()):
        assert 1 <= len(checkpoints.list_versions(root, model.name)) <= 2, model.name
