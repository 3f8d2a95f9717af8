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
