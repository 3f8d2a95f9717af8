import io

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels import checkpoints
from genmodels.images import ImageGenerator, Morpher, check_seed, gif_bytes, grid, png_bytes
from genmodels.nets.dcgan import DCGANConfig, Discriminator, Generator
from genmodels.nets.features import FeatureNet, FeatureNetConfig
from genmodels.latents import Generation, slerp
from genmodels.nets.vae import ConvVAE, VAEConfig
from genmodels.training import common, dcgan
from genmodels.training.diffaug import diff_augment
from tests.conftest import TINY_DCGAN


def test_network_shapes():
    cfg = DCGANConfig(ngf=8, ndf=8)
    z, y = torch.randn(3, cfg.nz), torch.tensor([0, 4, 8])
    x = Generator(cfg)(z, y)
    assert x.shape == (3, 4, 64, 64) and x.abs().max() <= 1
    assert Discriminator(cfg)(x, y).shape == (3,)
    vae = ConvVAE(VAEConfig(nf=8, latent=16))
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (3, 16)
    assert vae.decode(mu).shape == (3, 4, 64, 64)
    terms = vae.loss_terms(x)
    assert terms["nll"].ndim == 0 and terms["kl"] >= 0
    net = FeatureNet(FeatureNetConfig(width=8, dim=16))
    assert net.features(x).shape == (3, 16) and net(x).shape == (3, 9)


def test_diffaugment_keeps_range_and_shape():
    torch.manual_seed(0)
    x = torch.rand(5, 4, 64, 64) * 2 - 1
    out = diff_augment(x)
    assert out.shape == x.shape and not torch.equal(out, x)
    assert torch.all(out[:, 3] <= 1)


def test_slerp_endpoints():
    a, b = torch.randn(8), torch.randn(8)
    path = slerp(a, b, torch.linspace(0, 1, 5))
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)


def test_seeds_are_validated():
    assert check_seed(0) == 0 and check_seed(2**32 - 1) == 2**32 - 1
    for bad in (-1, 2**32, 1.5, True):
        with pytest.raises(ValueError, match="seed"):
            check_seed(bad)


def test_generation_is_deterministic(tiny_models):
    gen = ImageGenerator.load(tiny_models)
    a = png_bytes(grid(gen.generate("circles", count=4, seed=7).images, cols=2))
    b = png_bytes(grid(ImageGenerator.load(tiny_models).generate("circles", count=4, seed=7).images, cols=2))
    c = png_bytes(grid(gen.generate("circles", count=4, seed=8).images, cols=2))
    assert a == b and a != c
    im = Image.open(io.BytesIO(a))
    assert im.size == (128, 128) and im.mode == "RGBA"
    res = gen.generate(1, count=3, seed=1)
    assert res.latents.shape == (3, 16) and res.themes == ["squares"] * 3 and res.version == "dcgan/v0001"
    kids = gen.variations(res.latents[0], "squares", count=4, seed=3)
    assert len(kids.images) == 4
    # children stay near the parent: closer than fresh samples are
    assert (kids.latents - res.latents[0]).norm(dim=1).mean() < (gen.latents(99, 4) - res.latents[0]).norm(dim=1).mean()
    with pytest.raises(ValueError, match="Unknown theme"):
        gen.generate("dinosaurs")
    with pytest.raises(ValueError, match="count"):
        gen.generate("circles", count=0)


def test_style_is_a_condition(tiny_models, styled_models, styled_npz):
    old, gen = ImageGenerator.load(tiny_models), ImageGenerator.load(styled_models)
    assert old.styles == ["folder"] and old.cfg.n_styles == 1  # a version trained before styles
    assert gen.styles == ["noto", "openmoji"] and gen.cfg.n_styles == 2 and gen.version == "dcgan/v0002"
    with np.load(styled_npz) as z:  # trained on both styles
        assert gen.card["warm_start"] == "dcgan/v0001" and gen.card["data"]["n_train_used"] == len(z["train_labels"])
    noto = gen.generate("circles", count=2, seed=5)
    outlined = gen.generate("circles", count=2, seed=5, style="openmoji")
    assert (noto.style, noto.style_index, outlined.style, outlined.style_index) == ("noto", 0, "openmoji", 1)
    # the same seed, the same candidate rows, the first always kept; each style keeps look-alikes out of its own grid
    rows = gen.latents(5, gen._candidates(2))
    assert torch.equal(noto.latents[0], rows[0]) and torch.equal(outlined.latents[0], rows[0])
    assert all((rows == z).all(1).any() for z in torch.cat([noto.latents, outlined.latents]))
    assert png_bytes(grid(noto.images)) != png_bytes(grid(outlined.images))
    again = ImageGenerator.load(styled_models).generate("circles", count=2, seed=5, style=1)
    assert png_bytes(grid(again.images)) == png_bytes(grid(outlined.images))  # same seed, same style: same bytes
    assert png_bytes(grid(gen.generate("circles", count=2, seed=5, style=None).images)) == png_bytes(grid(noto.images))
    # "any" is drawn from the seed: the same seed always gets the same style, and every style is reachable
    assert {gen.style_index("any", seed) for seed in range(6)} == {0, 1}
    assert gen.generate("circles", 1, seed=3, style="any").style == gen.generate("circles", 1, seed=3, style="any").style
    kids = gen.variations(outlined.latents[0], "circles", count=2, seed=1, style="openmoji")
    assert kids.style == "openmoji"
    assert gen.from_latents(outlined.latents, "circles", style="openmoji").style_index == 1
    for model, bad in ((gen, "twemoji"), (old, "noto")):
        with pytest.raises(ValueError, match="does not draw the style"):
            model.generate("circles", style=bad)


def test_morph_across_styles_reads_the_prepared_emoji(tiny_models, tmp_path):
    from genmodels.data import DataError

    # a prepared dataset of two emoji in two styles: Twemoji's 🐶 is blue here, so it can be told apart
    ims = np.zeros((4, 64, 64, 4), np.uint8)
    for i, colour in enumerate([(255, 128, 0), (255, 255, 0), (0, 0, 255), (0, 255, 0)]):
        ims[i, 16:48, 16:48] = (*colour, 255)
    np.savez(tmp_path / "images.npz", train_images=ims[:3], train_labels=np.array([2, 2, 2]),
             train_chars=np.array(["🐱", "🐶", "🐶"]), train_styles=np.array([0, 0, 1]),
             heldout_images=ims[3:], heldout_labels=np.array([4]), heldout_chars=np.array(["❤️"]),
             heldout_styles=np.array([1]), style_names=np.array(["noto", "twemoji"]), stats=np.array("{}"))
    m = Morpher.load(tiny_models)
    m.data_path = tmp_path / "images.npz"
    dog = np.asarray(m.image_from("🐶", "twemoji"))
    assert tuple(dog[32, 32]) == (0, 0, 255, 255)
    assert tuple(np.asarray(m.image_from("❤", "twemoji"))[32, 32]) == (0, 255, 0, 255)  # with or without U+FE0F
    out = m.morph("🐱", "🐶", frames=4, styles=("noto", "twemoji"))
    assert len(out.frames) == 4
    torch.testing.assert_close(out.latents[-1], m.encode([Image.fromarray(dog, "RGBA")])[0])
    with pytest.raises(ValueError, match="not among the twemoji"):
        m.image_from("🐱", "twemoji")
    with pytest.raises(ValueError, match="no 'openmoji' style"):
        m.image_from("🐱", "openmoji")
    m2 = Morpher.load(tiny_models)
    m2.data_path = tmp_path / "missing.npz"
    with pytest.raises(DataError, match="muse prepare images"):
        m2.image_from("🐶", "twemoji")


def test_a_styled_dcgan_fine_tunes_on_the_styles_people_liked(styled_models, styled_npz):
    from genmodels.feedback.finetune import FinetuneConfig, _styles_of, finetune_dcgan

    tensors, card = checkpoints.load_version(styled_models, "dcgan", 2)
    gen = ImageGenerator.load(styled_models)
    liked = gen.generate("circles", 2, seed=1, style="openmoji")
    disliked = gen.generate("squares", 2, seed=2)
    items = [{"value": 1.0, "latent": liked.latents.numpy(), "params": {"theme_index": 0, "style_index": 1}},
             {"value": -1.0, "latent": disliked.latents.numpy(), "params": {"theme": "squares"}}]
    assert _styles_of(items[0], 2, gen) == [1, 1] and _styles_of(items[1], 2, gen) == [0, 0]  # stored before styles
    new, extra = finetune_dcgan((tensors, card), items, styled_npz, FinetuneConfig(steps=2, batch=4),
                                torch.device("cpu"))
    assert extra["finetune"]["liked"] == 1 and all(torch.isfinite(v).all() for v in new.values())
    child = ImageGenerator.from_tensors(new, card)
    assert child.styles == ["noto", "openmoji"] and len(child.generate("circles", 1, seed=1, style=1).images) == 1


def test_grids_keep_near_copies_out():
    from genmodels.images import _distinct_indices

    v = np.array([[0.0, 0], [0.1, 0], [5, 0], [5.2, 0], [0, 7], [9, 9]])
    assert _distinct_indices([(v, 1.0)], 3) == [0, 2, 4]  # the first rows at least 1 apart, in order
    assert _distinct_indices([(v, 1.0)], 5) == [0, 2, 4, 5, 3]  # too few: then the farthest from those taken
    assert _distinct_indices([(v, 0.0)], 2) == [0, 1]  # threshold 0: the plain draw
    # a second space (features) in which rows 2 and 4 look alike: a row must be apart in both
    f = np.array([[0.0], [3], [6], [9], [6.5], [20]])
    assert _distinct_indices([(v, 1.0), (f, 2.0)], 3) == [0, 2, 5]
    # filling, "farthest" is in units of each space's threshold, the nearer space counting: row 4 (0.5 / 2 apart
    # in features) before row 3 (0.2 / 1 in pixels) and row 1 (0.1 / 1)
    assert _distinct_indices([(v, 1.0), (f, 2.0)], 4) == [0, 2, 5, 4]


def test_a_version_with_distinct_grids_draws_them_from_its_seeds(tiny_models):
    from genmodels.data.emoji import coarse_pixels
    from genmodels.images import GRID_CANDIDATES, _as_model, _distinct_indices

    plain = ImageGenerator.load(tiny_models)
    card = {k: v for k, v in plain.card.items() if k != "sampling"}
    plain = ImageGenerator(plain.G, card)
    rows = plain.latents(5, GRID_CANDIDATES * 4)
    px = coarse_pixels(_as_model(plain.render(rows, [0] * len(rows))))  # the images as delivered, as the rule judges them
    d = np.linalg.norm(px[:, None] - px[None], axis=-1)
    thr = float(np.median(d[np.triu_indices(len(px), 1)]))  # strict: about half the pairs would be near-copies
    gen = ImageGenerator(plain.G, {**card, "sampling": {"near_copy_pixels": thr}})
    grid_ = gen.generate("circles", count=4, seed=5)
    picked = [int(np.flatnonzero((rows == z).all(1))[0]) for z in grid_.latents]
    assert picked == _distinct_indices([(px, thr)], 4) and picked != [0, 1, 2, 3]  # the seed's own rows, sifted
    sub = d[np.ix_(picked, picked)][np.triu_indices(4, 1)]
    assert (sub >= thr).sum() > (d[:4, :4][np.triu_indices(4, 1)] >= thr).sum()  # further apart than the plain draw
    assert torch.equal(gen.generate("circles", count=4, seed=5).latents, grid_.latents)  # same seed, same grid
    assert torch.equal(plain.generate("circles", count=4, seed=5).latents, rows[:4])  # older versions: as before
    lineage = gen.lineage_latents([Generation(5, 4)], "circles")
    assert torch.equal(lineage, grid_.latents)  # the engine's path and the library's agree


def test_a_version_with_a_feature_rule_keeps_look_alikes_out_of_its_grids(tiny_models):
    from genmodels.data.emoji import coarse_pixels
    from genmodels.images import GRID_CANDIDATES, _as_model, _distinct_indices, load_feature_net

    plain = ImageGenerator.load(tiny_models)
    trained = plain.card["sampling"]  # what `muse train dcgan` writes: both rules, and the net the feature rule uses
    assert trained["features"] == "features/v0001" and trained["near_copy_features"] > 0
    assert plain.near_copy_features == trained["near_copy_features"]
    card = {k: v for k, v in plain.card.items() if k != "sampling"}
    rows = plain.latents(5, GRID_CANDIDATES * 4)
    images = plain.render(rows, [0] * len(rows))
    fnet, fcard = load_feature_net(tiny_models)  # the tiny models' own net, which the card's tag finds first
    with torch.no_grad():
        f = fnet.features(_as_model(images)).numpy()
    d = np.linalg.norm(f[:, None] - f[None], axis=-1)
    thr = float(np.median(d[np.triu_indices(len(f), 1)]))  # strict: about half the pairs look alike
    sampling = {"near_copy_pixels": 0.0, "near_copy_features": thr,
                "features": checkpoints.full_tag("features", fcard["version"])}
    gen = ImageGenerator.load(tiny_models)
    gen = ImageGenerator(gen.G, {**card, "sampling": sampling}, root=tiny_models)
    grid_ = gen.generate("circles", count=4, seed=5)
    picked = [int(np.flatnonzero((rows == z).all(1))[0]) for z in grid_.latents]
    assert picked == _distinct_indices([(coarse_pixels(_as_model(images)), 0.0), (f, thr)], 4) and picked != [0, 1, 2, 3]
    sub = d[np.ix_(picked, picked)][np.triu_indices(4, 1)]
    assert (sub >= thr).sum() > (d[:4, :4][np.triu_indices(4, 1)] >= thr).sum()  # further apart than the plain draw
    assert gen.is_distinct(grid_.images) == bool((sub >= thr).all())
    assert torch.equal(gen.lineage_latents([Generation(5, 4)], "circles"), grid_.latents)  # the engine's path agrees


def test_warm_start_tiles_each_theme_over_the_new_styles(tiny_models):
    tensors, card = checkpoints.load_version(tiny_models, "dcgan", 1)
    old_cfg = DCGANConfig(**{**card["config"]})
    cfg = DCGANConfig(**{**card["config"], "n_styles": 3})
    images = torch.zeros(6, 4, 64, 64)
    tr = dcgan.DCGANTrainer(images, torch.tensor([0, 1, 2, 0, 1, 2]), cfg, dcgan.DCGANTrainConfig(batch=4),
                            torch.device("cpu"), torch.tensor([0, 0, 1, 1, 2, 2]))
    tr.warm_start(tensors, old_cfg)
    z, y = torch.randn(3, cfg.nz), torch.tensor([0, 1, 2])
    old = ImageGenerator.load(tiny_models).G
    tr.G_ema.eval()
    with torch.no_grad():
        want = old(z, y)
        for s in range(3):  # before any step, every style draws what the one-style parent drew
            torch.testing.assert_close(tr.G_ema(z, y, torch.full((3,), s)), want)
    with pytest.raises(ValueError, match="warm start"):
        tr.warm_start(tensors, DCGANConfig(**{**card["config"], "nz": 32}))



def test_a_dcgan_step_leaves_its_losses_on_the_device_and_averages_g_in_one_fused_update(tmp_path):
    cfg = DCGANConfig(n_classes=3, ngf=8, ndf=8, nz=16)
    images = torch.rand(8, 4, 64, 64) * 2 - 1
    tr = dcgan.DCGANTrainer(images, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]), cfg,
                            dcgan.DCGANTrainConfig(batch=4, ema_start=1, ema_decay=0.9), torch.device("cpu"))
    out = tr.step(0)  # before ema_start: G_ema becomes a copy of G
    assert set(out) == {"d", "g", "r1", "ms"} and all(isinstance(v, torch.Tensor) and v.ndim == 0 for v in out.values())
    assert all(torch.equal(a, b) for a, b in zip(tr.G_ema.parameters(), tr.G.parameters()))
    before = [p.clone() for p in tr.G_ema.parameters()]
    tr.step(1)
    for old, new, g in zip(before, tr.G_ema.parameters(), tr.G.parameters()):
        torch.testing.assert_close(new, old + 0.1 * (g - old))  # decay 0.9, every parameter
    assert all(torch.equal(a, b) for a, b in zip(tr.G_ema.buffers(), tr.G.buffers()))
    res = common.run_loop(total_steps=3, step=tr.step, state=tr.state, load_state=tr.load_state,
                          run_dir=tmp_path, progress=False)
    assert res.steps == 3 and all(type(v) is float for v in res.last.values())  # plain floats for the card

def test_morph_and_files(tiny_models, tmp_path):
    m = Morpher.load(tiny_models)
    a = Image.new("RGBA", (30, 30), (255, 0, 0, 255))
    path = tmp_path / "b.png"
    Image.new("RGBA", (64, 64), (0, 0, 255, 128)).save(path)
    out = m.morph(a, str(path), frames=6)
    frames = out.frames
    assert len(frames) == 6 and frames[0].size == (64, 64)
    assert out.latents.shape == (6, m.vae.cfg.latent) and out.version == m.version
    distinct = [Image.new("RGBA", (64, 64), (40 * i, 0, 0, 255)) for i in range(6)]
    gif = Image.open(io.BytesIO(gif_bytes(distinct)))
    assert gif.format == "GIF" and gif.n_frames == 6 and gif.info.get("loop") == 0
    assert Image.open(io.BytesIO(gif_bytes(distinct, bounce=True))).n_frames == 10  # there and back: 6 + 4
    with pytest.raises(ValueError, match="neither an image file nor a single emoji"):
        m.morph("cat", str(path))
    with pytest.raises(ValueError, match="frames"):
        m.morph(a, a, frames=1)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    from genmodels.data import DataError

    with pytest.raises(DataError, match="not an image"):
        m.morph(str(bad), a)


def test_training_resumes_where_it_stopped(shapes_npz, tmp_path):
    kw = dict(data_path=shapes_npz, runs_dir=tmp_path / "runs", models_dir=tmp_path / "models",
              device="cpu", progress=False, model=TINY_DCGAN, save_every=2)
    tcfg = dcgan.DCGANTrainConfig(batch=8)
    v1 = dcgan.train(steps=3, tcfg=tcfg, **kw)
    state = checkpoints.load_resume(tmp_path / "runs" / "dcgan")
    assert state["_step"] == 3
    v2 = dcgan.train(steps=5, tcfg=dcgan.DCGANTrainConfig(batch=8), **kw)  # continues from step 3
    card = checkpoints.read_card(v2)
    assert card["steps"] == 5 and card["images_seen"] == 40 and card["data"]["sha256"].startswith("sha256:")
    assert card["config"]["ngf"] == 8 and v1.name == "v0001" and v2.name == "v0002"
    # An uninterrupted run of 5 steps ends on the same weights as 3 + resumed 2.
    v3 = dcgan.train(steps=5, tcfg=dcgan.DCGANTrainConfig(batch=8), resume=False,
                     **{**kw, "runs_dir": tmp_path / "runs2"})
    a, _ = checkpoints.load_version(tmp_path / "models", "dcgan", 2)
    b, _ = checkpoints.load_version(tmp_path / "models", "dcgan", 3)
    assert v3.name == "v0003"
    torch.testing.assert_close(a["G.out.weight"], b["G.out.weight"])


def test_models_refuse_a_corrupt_checkpoint(tiny_models, tmp_path):
    import shutil

    root = tmp_path / "m"
    shutil.copytree(tiny_models, root)
    f = root / "dcgan" / "v0001" / checkpoints.MODEL_FILE
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(checkpoints.CheckpointError):
        ImageGenerator.load(root)


# Recorded from the shipped weights: no change to the code may change a grid of a shipped version. v0004 sifts by
# pixels with 4 candidates per cell (its openmoji grid fills from the farthest rows); v0005 (v0004's weights) also
# sifts in the feature net's space, with 6.
SHIPPED_GRIDS = [  # (version, theme, seed, style, sha256 of the cells' RGBA bytes, prefix; rows kept of the candidates)
    (4, "smileys", 7, None, "87a7442b5996c7be", [0, 1, 2, 3]),
    (4, "food", 123, "twemoji", "f6ba4a0674d31c4d", [0, 1, 2, 3]),
    (4, "people", 7, "openmoji", "f24355d596b8adf2", [0, 2, 15, 8]),
    (4, "animals", 42, "emojione", "0ffc699a832eb7cc", [0, 1, 2, 3]),
    (5, "smileys", 7, None, "87a7442b5996c7be", [0, 1, 2, 3]),
    (5, "people", 7, "openmoji", "01cf34299126244e", [0, 2, 15, 23]),
]


@pytest.mark.parametrize("version,theme,seed,style,digest,kept", SHIPPED_GRIDS)
def test_grids_are_unchanged_on_the_shipped_weights(version, theme, seed, style, digest, kept):
    import hashlib

    from genmodels import paths

    if version not in checkpoints.list_versions(paths.SHIPPED, "dcgan"):
        pytest.skip(f"shipped dcgan v{version} is not installed")
    gen = ImageGenerator.load(paths.SHIPPED, version)
    out = gen.generate(theme, 4, seed=seed, style=style)
    assert hashlib.sha256(b"".join(np.asarray(im).tobytes() for im in out.images)).hexdigest()[:16] == digest
    rows = gen.latents(seed, gen._candidates(4))
    assert [int(np.flatnonzero((rows == z).all(1))[0]) for z in out.latents] == kept
