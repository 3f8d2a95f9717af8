"""The readability yardsticks (`genmodels.readability`): a Kneser-Ney trigram model that is a distribution,
SLOR that prefers real word order to shuffled, LSA coherence that prefers one-theme poems to mixed ones, and the
whole report on tiny text models in both languages."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from genmodels.data.poems import PoemDataset
from genmodels.readability import (
    EOS,
    UNK,
    Coherence,
    KneserNey,
    Yardsticks,
    poem_readability,
    readability_targets,
    units,
)

torch.set_num_threads(1)

SEA = "sea wave shore tide salt ship sail gull foam deep".split()
FIRE = "fire flame ember smoke ash spark hearth coal blaze burn".split()


def _line(rng: random.Random, words: list[str]) -> str:
    a, b, c = rng.sample(words, 3)
    return rng.choice(["the {} and the {} of {}", "I saw the {} upon the {} and {}", "O {}, my {}, my {}"]).format(
        a, b, c)


def _poems(n: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [[_line(rng, SEA if i % 2 else FIRE) for _ in range(4)] for i in range(n)]


def test_kneser_ney_is_a_distribution():
    lines = [units(l, "en") for p in _poems(60, 0) for l in p]
    kn = KneserNey.fit(lines)
    support = sorted(kn.vocab - {UNK}) + [UNK]
    for ctx in [("<s>", "<s>"), ("the", "sea"), ("never", "seen"), ("<s>", "o")]:
        total = sum(kn.prob(*ctx, w) for w in support)
        assert total == pytest.approx(1.0, abs=1e-9), ctx
    assert EOS in kn.vocab


def test_slor_prefers_real_order_and_discounts_word_frequency():
    kn = KneserNey.fit([units(l, "en") for p in _poems(200, 1) for l in p])
    held = [units(l, "en") for p in _poems(40, 2) for l in p]
    rng = random.Random(3)
    shuffled = [rng.sample(u, len(u)) for u in held]
    real = sum(map(kn.slor, held)) / len(held)
    assert real > 0.5 > sum(map(kn.slor, shuffled)) / len(shuffled)
    # a "line" of the most frequent words in no order: probable words, but no syntax
    salad = [["the", "the", "of", "and", "my"], ["and", "the", "my", "of"]]
    assert sum(map(kn.slor, salad)) / 2 < real
    assert kn.perplexity(held) < kn.perplexity(shuffled)


def test_lsa_coherence_prefers_one_theme_per_poem():
    train = _poems(300, 4)
    coh = Coherence(train, "en", stop=3, dim=8)
    held = _poems(40, 5)
    rng = random.Random(6)
    mixed = [[rng.choice(rng.choice(held)) for _ in range(4)] for _ in range(40)]
    assert coh.mean_score(held) > coh.mean_score(mixed) + 0.2
    assert coh.poem_score(["the", "of"]) is None  # no content words with vectors
    assert Coherence([["a b"]], "en", stop=0).poem_score(["sea", "fire"]) is None  # too small a corpus


def _dataset(lang: str, poems: list[list[str]]) -> PoemDataset:
    n = len(poems)
    splits = {"train": poems[: n * 3 // 4], "dev": poems[n * 3 // 4: n * 7 // 8], "heldout": poems[n * 7 // 8:]}
    return PoemDataset(lang=lang, sha256="test", seed=0, poems=splits)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_poem_readability_report(tmp_path: Path, lang: str):
    from genmodels.poetry import PoemModel
    from tests.textmodels import save_text_model

    if lang == "en":
        poems = _poems(160, 7)
    else:
        rng = random.Random(8)
        chars = "山水月花风云春秋江天人日夜雨雪"
        poems = [["".join(rng.choice(chars) for _ in range(5)) for _ in range(8)] for _ in range(160)]
    ds = _dataset(lang, poems)
    save_text_model(tmp_path, lang, [l for p in poems for l in p])
    pm = PoemModel.load(lang, root=tmp_path)
    sticks = Yardsticks.fit(ds, stop=3)
    r = poem_readability(pm, ds, n_poems=12, n_heldout=50, sticks=sticks)
    rows = 4 * (2 if lang == "zh" else 1)
    assert r["n_poems"] == 12 and r["n_lines"] <= 12 * rows
    assert set(r["slor"]) == {"samples", "heldout", "shuffled"}
    assert r["slor"]["heldout"] > r["slor"]["shuffled"]
    coh = r["coherence_lsa"]
    assert set(coh) == {"samples", "independent_lines", "real_poems", "mixed_lines"}
    if lang == "en":  # the en fixture's poems each keep to one theme (the zh one's characters are random)
        assert coh["real_poems"] > coh["mixed_lines"]
    assert 0 <= r["line_copy_rate"] <= 1
    t = readability_targets(r, lang)
    assert set(t) >= {"fluency", "line_copy_rate", "coherence"}
    if lang == "zh":  # the sampler never writes one character thrice in a clause
        assert r["repeat3_rate"] == 0.0 and "repeat3" in t
    assert poem_readability(pm, ds, n_poems=12, n_heldout=50, sticks=sticks) == r  # seeded end to end
