"""The latent operations (genmodels.latents) and the pipelines' seed-or-generator arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genmodels.latents import crossover, generator_for, mutate, slerp, variation


def _pair(d: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(d, generator=g), torch.randn(d, generator=g)


# ---- slerp ---------------------------------------------------------------------------------------------------


def test_slerp_endpoints_and_shapes():
    a, b = _pair()
    path = slerp(a, b, torch.linspace(0, 1, 7))
    assert path.shape == (7, 16)
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)
    mid = slerp(a, b, 0.5)  # a float fraction gives one point (D,)
    assert mid.shape == (16,)
    torch.testing.assert_close(mid, path[3])
    torch.testing.assert_close(slerp(a, b, torch.tensor(0.0)), a)


def test_slerp_keeps_the_norm_where_a_straight_line_dips():
    a, b = _pair(64, seed=1)
    a, b = a / a.norm(), b / b.norm()
    path = slerp(a, b, torch.linspace(0, 1, 9))
    torch.testing.assert_close(path.norm(dim=1), torch.ones(9))
    assert float(((a + b) / 2).norm()) < 0.95  # the straight line's midpoint is well inside the sphere
    # unequal norms: the norm moves between them
    norms = slerp(2 * a, 3 * b, torch.linspace(0, 1, 9)).norm(dim=1)
    assert float(norms.min()) >= 2 - 1e-5 and float(norms.max()) <= 3 + 1e-5


def test_slerp_of_parallel_codes_is_the_straight_line():
    a = torch.randn(8, generator=torch.Generator().manual_seed(2))
    path = slerp(a, 2 * a, torch.linspace(0, 1, 5))
    torch.testing.assert_close(path, torch.linspace(1, 2, 5)[:, None] * a)


# ---- variation, mutation, crossover ------------------------------------------------------------------------


def test_variation_ends_and_broadcasting():
    parent = torch.randn(16, generator=torch.Generator().manual_seed(3))
    eps = torch.randn(5, 16, generator=torch.Generator().manual_seed(4))
    assert torch.equal(variation(parent, eps, 0.0), parent.expand(5, 16))
    assert torch.equal(variation(parent, eps, 1.0), eps)
    kids = variation(parent, eps, 0.35)
    assert kids.shape == (5, 16)
    # the same value whether the parent is given as (D,) or (1, D)
    assert torch.equal(kids, variation(parent.reshape(1, -1), eps, 0.35))


def test_variation_stays_on_the_priors_shell():
    g = torch.Generator().manual_seed(5)
    parent, eps = torch.randn(20_000, 32, generator=g), torch.randn(20_000, 32, generator=g)
    kids = variation(parent, eps, 0.6)
    assert abs(float(kids.pow(2).sum(1).mean()) / 32 - 1) < 0.02  # E|z|² = D, as for a draw from N(0, I)


def test_mutate_is_deterministic_given_a_generator():
    z = torch.randn(4, 16, generator=torch.Generator().manual_seed(6))
    a = mutate(z, 0.3, torch.Generator().manual_seed(7))
    b = mutate(z, 0.3, torch.Generator().manual_seed(7))
    c = mutate(z, 0.3, torch.Generator().manual_seed(8))
    assert a.shape == z.shape and torch.equal(a, b) and not torch.equal(a, c)
    fresh = torch.randn(4, 16, generator=torch.Generator().manual_seed(12))
    assert (a - z).norm() < (fresh - z).norm()  # a mutation stays near its source


def test_mutation_of_scale_zero_is_the_identity():
    z = torch.randn(3, 16, generator=torch.Generator().manual_seed(9))
    assert torch.equal(mutate(z, 0.0, torch.Generator().manual_seed(1)), z)
    with pytest.raises(ValueError, match="scale"):
        mutate(z, 1.5, torch.Generator())


def test_crossover_of_identical_parents_is_the_parent():
    a = torch.randn(4, 16, generator=torch.Generator().manual_seed(10))
    for t in (0.0, 0.3, 0.5, 1.0):
        torch.testing.assert_close(crossover(a, a.clone(), t), a)


def test_crossover_is_a_slerp_per_row():
    g = torch.Generator().manual_seed(11)
    a, b = torch.randn(3, 16, generator=g), torch.randn(3, 16, generator=g)
    torch.testing.assert_close(crossover(a, b, 0.0), a)
    torch.testing.assert_close(crossover(a, b, 1.0), b)
    t = torch.tensor([0.2, 0.5, 0.9])
    kids = crossover(a, b, t)
    assert kids.shape == (3, 16)
    for i in range(3):
        torch.testing.assert_close(kids[i], slerp(a[i], b[i], float(t[i])))
    torch.testing.assert_close(crossover(a[0], b[0], 0.5), slerp(a[0], b[0], 0.5))  # one pair (D,)
    with pytest.raises(ValueError, match="one shape"):
        crossover(a, b[:2])


def test_a_seed_or_a_generator_exactly_one():
    g = torch.Generator().manual_seed(3)
    assert generator_for(None, g) is g
    assert torch.equal(torch.randn(4, generator=generator_for(3, None)), torch.randn(4, generator=g))
    for seed, gen in ((None, None), (1, torch.Generator())):
        with pytest.raises(ValueError, match="exactly one"):
            generator_for(seed, gen)


# ---- the pipelines -------------------------------------------------------------------------------------------


def _pixels(out) -> np.ndarray:
    return np.stack([np.asarray(im) for im in out.images])


def test_images_from_a_seed_a_generator_or_latents(tiny_models):
    from genmodels.images import ImageGenerator

    gen = ImageGenerator.load(tiny_models)
    by_seed = gen.generate("circles", count=4, seed=7)
    assert by_seed.seed == 7 and by_seed.theme == "circles" and by_seed.labels == [by_seed.theme_index] * 4
    by_gen = gen.generate("circles", count=4, generator=torch.Generator().manual_seed(7))
    assert by_gen.seed is None and torch.equal(by_gen.latents, by_seed.latents)
    assert np.array_equal(_pixels(by_gen), _pixels(by_seed))
    given = gen.from_latents(by_seed.latents, "circles")
    assert given.seed is None and np.array_equal(_pixels(given), _pixels(by_seed))
    assert gen.generate("circles", count=2).seed == 0  # neither: seed 0, as before
    with pytest.raises(ValueError, match="exactly one"):
        gen.generate("circles", count=2, seed=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="latents must have shape"):
        gen.from_latents(torch.zeros(2, gen.cfg.nz + 1), "circles")
    kids = gen.variations(by_seed.latents[0], "circles", count=3, generator=torch.Generator().manual_seed(3))
    assert torch.equal(kids.latents, gen.variations(by_seed.latents[0], "circles", count=3, seed=3).latents)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_poem_carries_its_latents(tmp_path, lang):
    from genmodels.poetry import PoemModel
    from tests.e2e.conftest import EN_LINES, ZH_LINES
    from textmodels import save_text_model

    save_text_model(tmp_path, lang, EN_LINES if lang == "en" else ZH_LINES)
    m = PoemModel.load(lang, root=tmp_path)
    out = m.sample(5, lines=3)
    per_line = 2 if lang == "zh" else 1  # a Chinese line is a couplet of two decoded clauses
    assert out.latents.shape == (3 * per_line, m.model.cfg.latent_dim) and out.seed == 5
    assert str(out) == out.text and out.lines == out.text.splitlines() and len(out.lines) == 3
    assert out.version == m.version and out.params["lines"] == 3 and out.params["theme"] is None
    again = m.sample(generator=torch.Generator().manual_seed(5), lines=3)
    assert again.text == out.text and torch.equal(again.latents, out.latents) and again.seed is None
    for kw in ({}, {"seed": 1, "generator": torch.Generator()}):
        with pytest.raises(ValueError, match="exactly one"):
            m.sample(lines=3, **kw)
    mo = m.morph(EN_LINES[0] if lang == "en" else ZH_LINES[0], EN_LINES[5] if lang == "en" else ZH_LINES[5], steps=4)
    assert len(mo.frames) == 4 and mo.latents.shape == (4, m.model.cfg.latent_dim) and mo.version == m.version
