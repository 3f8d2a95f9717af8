import io

import pytest
import torch
from PIL import Image

from genmodels import checkpoints
from genmodels.images import ImageGenerator, Morpher, check_seed, gif_bytes, grid, png_bytes
from genmodels.nets.dcgan import DCGANConfig, Discriminator, Generator
from genmodels.nets.features import FeatureNet, FeatureNetConfig
from genmodels.latents import slerp
from genmodels.nets.vae import ConvVAE, VAEConfig
from genmodels.training import dcgan
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
