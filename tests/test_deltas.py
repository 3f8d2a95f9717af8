"""Per-server deltas (genmodels/deltas.py): round trip, base check, merged == unmerged, zero delta == base."""

from __future__ import annotations

import pytest
import torch

from genmodels import checkpoints, deltas
from genmodels.images import ImageGenerator, Morpher
from genmodels.nets import dataclass_from_dict
from genmodels.nets.textvae import BOS_ID, TextVAE, TextVAEConfig

WEIGHTS = "genmodels/weights"


@pytest.fixture(scope="module")
def gen() -> ImageGenerator:
    return ImageGenerator.load(root=WEIGHTS, version=5)


@pytest.fixture(scope="module")
def morpher() -> Morpher:
    return Morpher.load(root=WEIGHTS, version=2)


@pytest.fixture(scope="module")
def text() -> tuple[TextVAE, dict]:
    tensors, card = checkpoints.load_version(WEIGHTS, "textvae-zh", 8)
    model = TextVAE(dataclass_from_dict(TextVAEConfig, card["config"]))
    checkpoints.load_into(model, tensors, "textvae-zh", skip=("pref.",))
    return model.eval(), card


def _randomise(module: torch.nn.Module, std: float = 0.05, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return module


def _batch(n: int = 6, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 128, generator=g), torch.randint(9, (n,), generator=g), torch.randint(4, (n,), generator=g)


def _text_logits(model: TextVAE, seed: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    inp = torch.cat([torch.full((3, 1), BOS_ID), torch.randint(4, model.cfg.vocab_size, (3, 7), generator=g)], 1)
    z = torch.randn(3, model.cfg.latent_dim, generator=g)
    return model.decode(inp, z)[0]


# ---- a zero delta is the base ------------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [deltas.DCGANDeltaConfig(), deltas.DCGANDeltaConfig(per_class=True, conv_rank=4)])
def test_zero_dcgan_delta_leaves_outputs_unchanged(gen, cfg):
    z, y, s = _batch()
    d = deltas.DCGANDelta(gen.cfg, cfg)
    with torch.no_grad():
        want = gen.G(z, y, s)
        assert torch.equal(deltas.merge_dcgan(gen.G, d)(z, y, s), want)
        torch.testing.assert_close(deltas.DeltaGenerator(gen.G, d).eval()(z, y, s), want, atol=1e-6, rtol=0)


def test_zero_vae_and_text_deltas_leave_outputs_unchanged(morpher, text):
    z = torch.randn(3, 128)
    d = deltas.VAEDelta(morpher.vae, deltas.VAEDeltaConfig())
    with torch.no_grad():
        want = morpher.vae.decode(z)
        assert torch.equal(deltas.merge_vae(morpher.vae, d).decode(z), want)
        torch.testing.assert_close(deltas.DeltaVAE(morpher.vae, d).decode(z), want, atol=1e-6, rtol=0)
        model, _ = text
        td = deltas.TextVAEDelta(model, deltas.TextVAEDeltaConfig())
        # (the GRU's merged weights are new tensors, not flattened: the same values through another kernel path,
        # whose sums round differently in the last bits on some CPUs)
        torch.testing.assert_close(_text_logits(deltas.merge_textvae(model, td)), _text_logits(model), atol=5e-5,
                                   rtol=0)


# ---- merged == unmerged ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [deltas.DCGANDeltaConfig(), deltas.DCGANDeltaConfig(per_class=True),
                                 deltas.DCGANDeltaConfig(conv_rank=4)])
def test_merged_dcgan_equals_unmerged(gen, cfg):
    z, y, s = _batch()
    d = _randomise(deltas.DCGANDelta(gen.cfg, cfg))
    with torch.no_grad():
        merged = deltas.merge_dcgan(gen.G, d)(z, y, s)
        unmerged = deltas.DeltaGenerator(gen.G, d).eval()(z, y, s)
        assert (merged - gen.G(z, y, s)).abs().max() > 0.05  # the delta does something
    torch.testing.assert_close(merged, unmerged, atol=1e-4, rtol=0)


def test_merging_leaves_the_base_untouched(gen):
    z, y, s = _batch()
    with torch.no_grad():
        before = gen.G(z, y, s)
        deltas.merge_dcgan(gen.G, _randomise(deltas.DCGANDelta(gen.cfg, deltas.DCGANDeltaConfig(conv_rank=2))))
        assert torch.equal(gen.G(z, y, s), before)


def test_one_batch_carries_several_servers(gen):
    """A bank of FiLM deltas: each row of one forward pass gets its own server's offsets."""
    cfg = deltas.DCGANDeltaConfig(per_class=True)
    ds = [_randomise(deltas.DCGANDelta(gen.cfg, cfg), seed=i) for i in range(3)]
    bank = deltas.DeltaGenerator(gen.G, deltas.DCGANDeltaBank.stack(ds)).eval()
    z, y, s = _batch(9)
    server = torch.arange(9) % 3
    with torch.no_grad():
        rows = bank(z, y, s, server)
        for k, d in enumerate(ds):
            m = server == k
            torch.testing.assert_close(rows[m], deltas.merge_dcgan(gen.G, d)(z[m], y[m], s[m]), atol=1e-4, rtol=0)


def test_merged_vae_and_text_equal_unmerged(morpher, text):
    z = torch.randn(3, 128)
    d = _randomise(deltas.VAEDelta(morpher.vae, deltas.VAEDeltaConfig()))
    with torch.no_grad():
        torch.testing.assert_close(deltas.merge_vae(morpher.vae, d).decode(z), deltas.DeltaVAE(morpher.vae, d).decode(z),
                                   atol=1e-4, rtol=0)
        model, _ = text
        td = _randomise(deltas.TextVAEDelta(model, deltas.TextVAEDeltaConfig()), std=0.02)
        g = torch.Generator().manual_seed(2)
        inp = torch.cat([torch.full((3, 1), BOS_ID), torch.randint(4, model.cfg.vocab_size, (3, 7), generator=g)], 1)
        zz = torch.randn(3, model.cfg.latent_dim, generator=g)
        unmerged = deltas.call_with_delta(model, td, "decode", inp, zz)[0]
        merged = deltas.merge_textvae(model, td).decode(inp, zz)[0]
        assert (merged - model.decode(inp, zz)[0]).abs().max() > 1e-3
    torch.testing.assert_close(merged, unmerged, atol=1e-4, rtol=0)


# ---- files: round trip and the base check ------------------------------------------------------------------------

def test_round_trip_gives_the_in_memory_outputs(gen, tmp_path):
    d = _randomise(deltas.DCGANDelta(gen.cfg, deltas.DCGANDeltaConfig(per_class=True)))
    delta = deltas.make_delta("dcgan", gen.card, d.cfg, d, {"finetune": {"method": "test"}})
    z, y, s = _batch()
    want = deltas.apply(gen, delta).G(z, y, s)
    exact = deltas.load_delta(deltas.save_delta(tmp_path / "d32.safetensors", delta, half=False), gen.card)
    assert exact.base == deltas.base_of(gen.card) and exact.card["finetune"] == {"method": "test"}
    assert torch.equal(deltas.apply(gen, exact).G(z, y, s), want)
    half = deltas.load_delta(deltas.save_delta(tmp_path / "d16.safetensors", delta), gen.card)  # fp16 on disk
    torch.testing.assert_close(deltas.apply(gen, half).G(z, y, s), want, atol=2e-3, rtol=0)
    assert (tmp_path / "d16.safetensors").stat().st_size < 0.1 * 3_923_978


def test_vae_round_trip(morpher, tmp_path):
    d = _randomise(deltas.VAEDelta(morpher.vae, deltas.VAEDeltaConfig()))
    delta = deltas.make_delta("vae", morpher.card, d.cfg, d)
    z = torch.randn(2, 128)
    loaded = deltas.load_delta(deltas.save_delta(tmp_path / "v.safetensors", delta, half=False), morpher.card)
    assert torch.equal(deltas.apply(morpher, loaded).vae.decode(z), deltas.apply(morpher, delta).vae.decode(z))


def test_a_delta_refuses_another_base(gen, tmp_path):
    d = deltas.make_delta("dcgan", gen.card, deltas.DCGANDeltaConfig(), deltas.DCGANDelta(gen.cfg, deltas.DCGANDeltaConfig()))
    path = deltas.save_delta(tmp_path / "d.safetensors", d)
    other = ImageGenerator.load(root=WEIGHTS, version=4)  # same architecture, other weights
    with pytest.raises(deltas.DeltaBaseMismatch, match="v0005"):
        deltas.apply(other, d)
    with pytest.raises(deltas.DeltaBaseMismatch):
        deltas.load_delta(path, other.card)
    with pytest.raises(deltas.DeltaBaseMismatch):  # same name and version, other bytes
        deltas.load_delta(path, {**gen.card, "sha256": "0" * 64})
    assert deltas.load_delta(path, gen.card).base["sha256"] == gen.card["sha256"]


def test_a_file_that_is_not_a_delta_is_refused(tmp_path):
    checkpoints.save_weights(tmp_path / "w.safetensors", {"x": torch.zeros(2)})
    with pytest.raises(checkpoints.CheckpointError, match="not a Muse delta"):
        deltas.load_delta(tmp_path / "w.safetensors")


def test_the_text_delta_finetune_learns_on_the_delta_alone(tmp_path):
    """The delta variant of the text fine-tune runs the full method's objective on the decoder's offsets: the base's
    tensors stay as they were, and base + delta draws other lines than the base."""
    from genmodels.data.poems import build_poem_dataset, load_poem_dataset
    from genmodels.feedback.finetune import FinetuneConfig, finetune_textvae_delta
    from genmodels.poetry import PoemModel
    from tests.e2e.conftest import EN_LINES
    from textmodels import save_text_model

    models = tmp_path / "models"
    save_text_model(models, "en", EN_LINES)
    text = tmp_path / "poems.txt"
    text.write_text("\n\n".join("\n".join(EN_LINES[i:i + 3]) for i in range(0, len(EN_LINES), 3)), "utf-8")
    ds = load_poem_dataset(build_poem_dataset("en", text, tmp_path / "data"))
    poem = PoemModel.load("en", root=models)
    before = {k: v.clone() for k, v in poem.model.state_dict().items()}
    items = [{"value": 1 if i % 2 else -1, "content": "\n".join(EN_LINES[i:i + 2]), "params": {}} for i in range(6)]
    parent = checkpoints.load_version(models, "textvae-en")
    tensors, card = finetune_textvae_delta(parent, items, ds, FinetuneConfig(text_steps=5, replay_lines=50),
                                           torch.device("cpu"), poem=poem)
    assert any(k.startswith("delta.") for k in tensors) and card["finetune"]["liked_lines"] > 0
    assert all(torch.equal(v, poem.model.state_dict()[k]) for k, v in before.items())  # the base is untouched
    offsets = [v for k, v in tensors.items() if k.startswith("delta.")]
    assert any(float(v.abs().max()) > 0 for v in offsets)  # it learned something, on the delta


def test_the_image_delta_finetunes_learn_on_the_delta_alone(tiny_models, shapes_npz):
    """The DCGAN's and the VAE's delta fine-tunes run on liked results and return offsets only; the base's files
    are not touched."""
    import numpy as np

    from genmodels.feedback.finetune import FinetuneConfig, finetune_dcgan_delta, finetune_vae_delta

    cfg = FinetuneConfig(steps=3, batch=8)
    gen = ImageGenerator.load(tiny_models)
    z = gen.latents(1, 4).numpy()
    items = [{"value": 1 if i % 2 else -1, "latent": z[i:i + 1], "params": {"theme_index": 0}} for i in range(4)]
    for name, fn in (("dcgan", finetune_dcgan_delta), ("vae", finetune_vae_delta)):
        parent = checkpoints.load_version(tiny_models, name)
        before = {k: v.clone() for k, v in parent[0].items()}
        if name == "vae":
            m = Morpher.load(tiny_models)
            items = [{"value": 1, "latent": m.encode([im]).numpy(), "params": {}}
                     for im in gen.generate(0, 2, seed=3).images]
        tensors, card = fn(parent, items, shapes_npz, cfg, torch.device("cpu"))
        assert any(k.startswith("delta.") for k in tensors) and card["finetune"]["steps"] == 3
        assert all(np.isfinite(v.float().numpy()).all() for v in tensors.values())
        assert all(torch.equal(v, parent[0][k]) for k, v in before.items())
