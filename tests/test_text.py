"""Fast tests of the text half: poem datasets, tokenizer, text VAE, training, PoemModel and evaluation.

Everything runs on a tiny corpus written to tmp_path, on one CPU thread, in a few seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import math

import pytest
import torch

from genmodels import checkpoints
from genmodels.data import DataError
from genmodels.data.poems import build_poem_dataset, load_poem_dataset, zh_clauses
from genmodels.data.tokenizer import (
    EOS_ID,
    UNK_ID,
    detokenize,
    encode,
    load_tokenizer,
    save_tokenizer,
    train_tokenizer,
)
from genmodels.poetry import load_text_model
from genmodels.nets.textvae import TextVAE, TextVAEConfig

torch.set_num_threads(1)

WORDS = "moon sea night light heart rain wind river star stone bird song fire snow rose dream".split()


def _poem(i: int) -> str:
    w = lambda k: WORDS[(i * 3 + k) % len(WORDS)]  # noqa: E731
    return "\n".join(
        [
            f"the {w(0)} and the {w(1)} of night,",
            f"I saw the {w(2)} upon the {w(3)}.",
            f"O {w(4)}, my {w(5)}, my {w(0)} so bright",
            f"we sing the {w(1)} and then the {w(2)}!",
        ]
    )


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    src = tmp_path / "poems.txt"
    body = "\n\n".join(_poem(i) for i in range(10)) + "\n%\n" + "\n".join(_poem(i) for i in range(10, 14))
    src.write_text(body + "\n\t\t-- Someone Famous\n", "utf-8")
    return src


# ----------------------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------------------


def test_dataset_split_is_deterministic_and_by_poem(corpus: Path, tmp_path: Path):
    a = load_poem_dataset(build_poem_dataset("en", corpus, tmp_path / "a", seed=3))
    b = load_poem_dataset(build_poem_dataset("en", corpus, tmp_path / "b", seed=3))
    assert a.poems == b.poems and a.sha256 == b.sha256
    # 10 blank-line-separated poems + 4 joined ones after the % line = 11 poems
    assert sum(len(p) for p in a.poems.values()) == 11
    assert all(a.poems[s] for s in ("train", "dev", "heldout"))
    # every poem lands whole in exactly one split
    where: dict[str, set[str]] = {}
    for split, poems in a.poems.items():
        for poem in poems:
            where.setdefault(poem[0] + poem[1], set()).add(split)
    assert all(len(s) == 1 for s in where.values())
    assert not any("Someone Famous" in line for line in a.lines("train") + a.lines("dev") + a.lines("heldout"))
    c = load_poem_dataset(build_poem_dataset("en", corpus, tmp_path / "c", seed=4))
    assert c.poems != a.poems  # the seed matters
    doc = json.loads((tmp_path / "a" / "poems-en.json").read_text("utf-8"))
    assert doc["stats"]["train"]["lines"] == len(a.lines("train"))


def test_dataset_errors_are_friendly(tmp_path: Path):
    with pytest.raises(DataError, match="does not exist"):
        build_poem_dataset("en", tmp_path / "nope.txt", tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n  \n", "utf-8")
    with pytest.raises(DataError, match="empty"):
        build_poem_dataset("en", empty, tmp_path)
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10)
    with pytest.raises(DataError, match="binary"):
        build_poem_dataset("en", binary, tmp_path)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(DataError, match="UTF-8"):
        build_poem_dataset("en", latin, tmp_path)
    with pytest.raises(DataError, match="language"):
        build_poem_dataset("fr", None, tmp_path)


def test_zh_clause_split():
    line = "\x1b[33m床前明月光，疑是地上霜。\x1b[m"
    assert zh_clauses(line) == ["床前明月光", "疑是地上霜"]
    assert zh_clauses("举头望明月？低头思故乡！") == ["举头望明月", "低头思故乡"]


def test_zh_mixed_file_keeps_only_new_regulated_verse():
    from genmodels.data.poems import _is_new_regulated_verse, _zh_entry_lines

    seen = {"床前明月光"}
    verse = _zh_entry_lines(["青鸟不传云外信，丁香空结雨中愁。", "\x1b[33m    -- 李璟《摊破浣溪沙》\x1b[m"])
    assert verse == ["青鸟不传云外信", "丁香空结雨中愁"] and _is_new_regulated_verse(verse, seen)
    assert not _is_new_regulated_verse(["床前明月光", "疑是地上霜"], seen)  # a quote of a poem we have
    assert _is_new_regulated_verse(["狗咬穿烂的", "人舔穿好的"], set())  # shape alone decides: a 5+5 proverb passes
    assert not _is_new_regulated_verse(["天下有道", "却走马以粪"], set())  # prose: half the clauses are not 5/7
    assert not _is_new_regulated_verse(["既坠釜甑反顾无益"], set())  # one clause


# ----------------------------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------------------------


def test_tokenizer_round_trip(tmp_path: Path):
    lines = ["The moon, the sea.", "I don't know the sea!", "the moon and the sea"] * 2
    tok = train_tokenizer("en", lines)
    path = save_tokenizer(tok, tmp_path)
    tok2 = load_tokenizer(path)
    ids = encode(tok2, "The moon, the sea.")
    assert ids == encode(tok, "The moon, the sea.")
    assert UNK_ID not in ids
    assert detokenize(tok2, ids, "en") == "The moon, the sea."
    assert "don't" in tok2.get_vocab()  # inner apostrophes stay in the word
    assert encode(tok2, "zebra")[0] == UNK_ID  # unseen words are [UNK]
    zh = train_tokenizer("zh", ["床前明月光", "疑是地上霜", "明月光"])
    zids = encode(zh, "明月光")
    assert len(zids) == 3 and detokenize(zh, zids, "zh") == "明月光"


# ----------------------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------------------


def _tiny(latent: int = 8) -> TextVAE:
    torch.manual_seed(0)
    return TextVAE(TextVAEConfig(vocab_size=30, embed_dim=16, enc_hidden=12, dec_hidden=20, latent_dim=latent,
                                 max_len=10)).eval()


def test_model_shapes_and_estimates():
    m = _tiny()
    x = torch.randint(4, 30, (5, 7))
    lengths = torch.tensor([7, 3, 5, 1, 6])
    x[1, 3:] = 0
    mu, logvar = m.encode(x, lengths)
    assert mu.shape == logvar.shape == (5, 8)
    logits, h = m.decode(torch.randint(4, 30, (5, 4)), mu)
    assert logits.shape == (5, 4, 30) and h.shape == (1, 5, 20)
    terms = m.elbo_terms(x, lengths, word_dropout=0.5)
    assert terms["rec"].shape == (5,) and terms["kl"].shape == (5, 8)
    assert bool((terms["rec"] > 0).all()) and bool((terms["kl"] >= 0).all())
    iw = m.iw_log_likelihood(x, lengths, k=7, chunk=3)
    assert iw.shape == (5,) and bool(torch.isfinite(iw).all())
    # the IW bound with K samples is at least the (one-sample-averaged) ELBO on average
    with torch.no_grad():
        elbo = -(m.elbo_terms(x, lengths)["rec"] + terms["kl"].sum(-1))
    assert float(iw.mean()) > float(elbo.mean()) - 5.0
    # one set of weights gives every smaller K: the estimate from the first k' weights is that K = k' estimate
    m.eval()
    g = torch.Generator().manual_seed(3)
    log_w = m.log_importance_weights(x, lengths, k=64, chunk=16, generator=g)
    assert log_w.shape == (64, 5)
    g = torch.Generator().manual_seed(3)
    assert torch.allclose(m.iw_from_weights(log_w[:16]), m.iw_log_likelihood(x, lengths, k=16, chunk=16, generator=g))
    # and a larger K tightens the bound: averaged over disjoint groups, K = 64 reads higher than K = 1
    assert float(m.iw_from_weights(log_w).mean()) >= float(log_w.mean())
    assert m.mutual_information(x, lengths) <= torch.log(torch.tensor(5.0)).item() + 1e-4
    lm = _tiny(latent=0)
    assert not hasattr(lm, "encoder")
    assert lm.elbo_terms(x, lengths)["kl"].shape == (5, 0)
    assert torch.allclose(lm.iw_log_likelihood(x, lengths), lm.log_px_z(x, lengths, None))
    # the LM baseline's decoder has the same shape as the VAE's, minus the z input
    assert lm.decoder.hidden_size == m.decoder.hidden_size


def test_importance_sampling_against_exact_likelihood():
    """With a one-dimensional latent, log p(x) = log ∫ p(x|z) p(z) dz can be computed on a grid. Every proposal
    gives a lower bound on it on average; when q is too narrow (as trained encoders are), a widened proposal
    comes closer, and the evaluation's dev-split choice finds the better width."""
    from genmodels.eval_text import choose_proposal_scale

    m = _tiny(latent=1)
    with torch.no_grad():
        m.z_to_h.weight.mul_(8.0)  # make p(x|z) depend strongly on z
        m.to_stats.bias[1] = -3.0  # an over-confident q: sigma ~ 0.2
    x = torch.randint(4, 30, (12, 5))
    lengths = torch.randint(2, 6, (12,))
    grid = torch.linspace(-8, 8, 4001)  # (G,)
    with torch.no_grad():
        B, G = x.shape[0], grid.numel()
        log_pxz = m.log_px_z(x.repeat_interleave(G, 0), lengths.repeat_interleave(G), grid.repeat(B)[:, None])
        log_joint = log_pxz.view(B, G) - 0.5 * (grid**2 + math.log(2 * math.pi))  # (B, G)
        exact = torch.logsumexp(log_joint, dim=1) + math.log(float(grid[1] - grid[0]))  # (B,)
    gap = {}
    for s in (1.0, 2.0, 8.0):
        torch.manual_seed(0)
        est = m.iw_log_likelihood(x, lengths, k=2000, chunk=500, proposal_scale=s)
        gap[s] = float((exact - est).mean())
        assert gap[s] > -0.1, (s, gap[s])  # a lower bound (on average), up to sampling noise
    assert gap[1.0] > 0.3 and gap[8.0] < gap[2.0] < gap[1.0]
    assert abs(gap[8.0]) < 0.05  # a proposal that covers the posterior is close to exact at K = 2000
    best, table = choose_proposal_scale(m, x, lengths, scales=(1.0, 2.0, 8.0), k=200)
    assert best > 1.0 and set(table) == {"1.0", "2.0", "8.0"}
    assert table[str(best)] == min(table.values())
    with pytest.raises(ValueError):
        m.iw_log_likelihood(x, lengths, k=4, proposal_scale=0.0)


def test_sampling_is_seeded_and_never_emits_specials():
    m = _tiny()
    z = torch.randn(6, 8)
    a = m.sample(z, temperature=1.0, top_p=0.9, generator=torch.Generator().manual_seed(1))
    b = m.sample(z, temperature=1.0, top_p=0.9, generator=torch.Generator().manual_seed(1))
    assert a == b and len(a) == 6
    assert all(1 <= len(s) <= 10 and min(s) > EOS_ID for s in a)
    assert m.greedy(z) == m.greedy(z)
    fixed = m.sample(z, length=5, generator=torch.Generator().manual_seed(2))
    assert all(len(s) == 5 for s in fixed)  # a verse form imposed at decoding time


# ----------------------------------------------------------------------------------------------------------
# Training, PoemModel, evaluation (one small run shared by the tests below)
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture()
def trained(corpus: Path, tmp_path: Path):
    from genmodels.training.textvae import train

    data = tmp_path / "data"
    build_poem_dataset("en", corpus, data, seed=0)
    kw = dict(data_dir=data, runs_dir=tmp_path / "runs", models_dir=tmp_path / "models", steps=12,
              progress=False, eval_k=4, eval_samples=20)
    vdir = train("en", **kw)
    return vdir, data, tmp_path / "models", kw


def test_train_load_sample_morph_eval(trained, corpus, capsys):
    from genmodels.eval_text import evaluate_text
    from genmodels.poetry import PoemModel

    vdir, data, models, kw = trained
    card = checkpoints.read_card(vdir)
    assert card["steps"] <= 12 and card["wall_time_s"] >= 0 and card["data"]["sha256"]
    for key in ("iw_nll", "lm_nll", "kl", "mi", "active_units", "recon_f1", "copy_rate", "distinct2"):
        assert key in card["metrics"]
    assert (vdir / "tokenizer.json").exists()
    assert checkpoints.list_versions(models, "textlm-en") == [1]

    # checkpoint round trip: fp16 on disk, same tensors back
    tensors, card2 = checkpoints.load_version(models, "textvae-en")
    assert card2["sha256"] == card["sha256"]
    assert all(t.dtype == torch.float16 for t in tensors.values() if t.is_floating_point())

    m = PoemModel.load("en", root=models)
    assert m.version == "textvae-en/v0001"
    p1 = m.sample(seed=5, lines=3).text
    assert p1 == m.sample(seed=5, lines=3).text and len(p1.splitlines()) == 3
    assert m.sample(seed=5, lines=2, theme="the moon").text == m.sample(seed=5, lines=2, theme="the moon").text
    z = m.encode("the moon and the sea")
    assert z.shape == (m.model.cfg.latent_dim,)
    mo = m.morph("the moon and the sea", "my heart so bright", steps=4).frames
    assert len(mo) == 4 and mo[0] == "the moon and the sea" and mo[-1] == "my heart so bright"
    assert mo == m.morph("the moon and the sea", "my heart so bright", steps=4).frames
    for bad in ("", "   ", "x" * 201):
        with pytest.raises(ValueError):
            m.encode(bad)
    with pytest.raises(ValueError, match="under 200"):
        m.morph("a" * 300, "the sea", 3)

    res = evaluate_text("en", root=models, data_dir=data, k=4, n_samples=20)
    for key in ("iw_nll", "lm_nll", "kl", "mi", "active_units", "recon_f1", "copy_rate", "distinct2",
                "real_words", "targets"):
        assert key in res
    assert set(res["targets"]) >= {"iw_nll_vs_lm", "kl", "mi", "recon_f1", "copy_rate", "distinct2", "real_words"}
    assert res["n_samples"] == 20 and res["data_sha256_matches_card"] and res["version"] == "textvae-en/v0001"

    # `muse eval text --lang en --write-cards` stores what it measured in the version's card
    from genmodels.cli import main

    checkpoints.update_card(vdir, metrics={})
    assert main(["eval", "text", "--lang", "en", "--k", "4", "--samples", "20", "--write-cards", "--models",
                 str(models), "--data", str(data), "--json"]) == 0
    stored = checkpoints.read_card(vdir)["metrics"]
    assert stored["vae_version"] == 1 and "readability" in stored and "iw_nll" in stored
    # metrics measured on other poems than the version learned from never reach its card
    src = data.parent / "other.txt"
    src.write_text(corpus.read_text("utf-8") + "\n\nOne more poem here\nthat the model never read\n", "utf-8")
    other = build_poem_dataset("en", src, data.parent / "other", seed=0)
    assert load_poem_dataset(other).sha256 != checkpoints.read_card(vdir)["data"]["sha256"]
    before = (vdir / "card.json").read_text("utf-8")
    assert main(["eval", "text", "--lang", "en", "--k", "4", "--samples", "20", "--write-cards", "--models",
                 str(models), "--data", str(other.parent), "--json"]) == 0
    assert "card left as it was" in capsys.readouterr().err
    assert (vdir / "card.json").read_text("utf-8") == before


def test_train_resume_reuses_finished_run(trained):
    from genmodels.training.textvae import train

    vdir, data, models, kw = trained
    first = checkpoints.read_card(vdir)
    v2 = train("en", **kw)  # same data and recipe: both phases are already done, only the save repeats
    second = checkpoints.read_card(v2)
    assert v2.name == "v0002"
    assert second["steps"] == first["steps"]
    assert second["metrics"]["iw_nll"] == pytest.approx(first["metrics"]["iw_nll"], abs=1e-3)


def test_train_init_from_continues_a_version_with_its_tokenizer_and_baseline(trained):
    from genmodels.training.textvae import train

    vdir, data, models, kw = trained
    first_vae = checkpoints.load_version(models, "textvae-en", 1)[0]
    v2 = train("en", **{**kw, "runs_dir": kw["runs_dir"].parent / "runs-warm", "steps": 0}, init_from=1)
    card = checkpoints.read_card(v2)
    assert card["warm_start"] == {"textvae": "textvae-en/v0001", "textlm": "textlm-en/v0001"}
    assert card["baseline"] == "textlm-en/v0002" and card["steps"] == 0
    # no step taken: the new version is the old one's weights, under the old tokenizer
    assert (v2 / "tokenizer.json").read_text() == (vdir / "tokenizer.json").read_text()
    again = checkpoints.load_version(models, "textvae-en", 2)[0]
    assert again.keys() == first_vae.keys() and all(torch.equal(again[k], first_vae[k]) for k in again)
    lm1, lm2 = (checkpoints.load_version(models, "textlm-en", v)[0] for v in (1, 2))
    assert all(torch.equal(lm1[k], lm2[k]) for k in lm1)
    # a few steps move the weights away from where they started
    v3 = train("en", **{**kw, "runs_dir": kw["runs_dir"].parent / "runs-warm3", "steps": 4}, init_from=1)
    moved = checkpoints.load_version(models, "textvae-en", int(v3.name[1:]))[0]
    assert not all(torch.equal(moved[k], first_vae[k]) for k in moved)
    with pytest.raises(Exception, match="version 9"):
        train("en", **kw, init_from=9)


def test_polish_trains_only_the_vae_against_the_baseline_it_names(trained):
    from genmodels.data import DataError
    from genmodels.training.textvae import RECIPES, beta_at, polish_recipe, train

    from genmodels.eval_text import evaluate_text

    vdir, data, models, kw = trained
    train("en", **{**kw, "runs_dir": kw["runs_dir"].parent / "runs-warm", "steps": 0}, init_from=1)  # textlm v0002
    lms_before = sorted(p.name for p in (models / "textlm-en").iterdir())
    first_vae = checkpoints.load_version(models, "textvae-en", 1)[0]
    vp = train("en", **{**kw, "runs_dir": kw["runs_dir"].parent / "runs-polish", "steps": 6}, init_from=1,
               polish=True, word_dropout=0.1)
    card = checkpoints.read_card(vp)
    # no LM phase: the baseline is the one v0001 names, and no textlm version is written
    assert card["baseline"] == "textlm-en/v0001" and card["polish"] is True
    assert sorted(p.name for p in (models / "textlm-en").iterdir()) == lms_before
    assert card["recipe"]["ramp"] == 0.0 and card["recipe"]["lr_decay"] is True
    assert card["recipe"]["word_dropout"] == 0.1 and card["steps"] == 6
    moved = checkpoints.load_version(models, "textvae-en", int(vp.name[1:]))[0]
    assert not all(torch.equal(moved[k], first_vae[k]) for k in moved)
    # the same LM, read back from its fp16 file
    assert card["metrics"]["lm_nll"] == pytest.approx(checkpoints.read_card(vdir)["metrics"]["lm_nll"], abs=0.02)
    # evaluated against the baseline it names, not the newest LM
    res = evaluate_text("en", root=models, data_dir=data, k=4, n_samples=20, readability=False)
    assert res["version"] == f"textvae-en/{vp.name}" and res["lm_version"] == 1
    # at beta = 1 from the first step, every evaluation is eligible for the best weights
    r = polish_recipe(RECIPES["en"][1])
    assert all(beta_at(i, 100, r.cycles, r.ramp) == 1.0 for i in range(100))
    with pytest.raises(DataError, match="continues a version"):
        train("en", **kw, polish=True)


def test_a_version_that_ranks_keeps_the_lm_s_favourite_of_k_lines_per_latent(trained):
    from genmodels.poetry import RERANK, PoemModel

    vdir, data, models, kw = trained
    assert checkpoints.read_card(vdir)["sampling"] == {"rerank": RERANK}  # en ranks; it does not fuse
    m = PoemModel.load("en", root=models)
    assert m.rerank == RERANK and m.scorer is not None and m.lm_weight == 0 and m.temperature_scale == 1
    m.rerank = k = 4
    z = m._spread(torch.zeros(m.model.cfg.latent_dim), 1.0, 6, torch.Generator().manual_seed(1))  # (6, D)
    lines = m._decode(z, torch.Generator().manual_seed(2), 0.9, 0.9, None)
    # the same draws by hand: K samples per row, in one batch, scored by the LM baseline
    ids = m._sample_ids(z.repeat_interleave(k, 0), torch.Generator().manual_seed(2), 0.9, 0.9, None)
    scores = m.fluency(ids).view(6, k)
    expect = [m._text(ids[i * k + int(j)]).strip() for i, j in enumerate(scores.argmax(1))]
    assert lines == expect
    assert float(scores.max(1).values.mean()) >= float(scores[:, 0].mean())  # the kept lines beat a plain draw
    # fluency is the LM's mean log-probability per token, the end of the line included
    lm, _, _ = load_text_model("textlm-en", models)
    one = ids[0]
    with torch.no_grad():
        logp = lm.log_px_z(torch.tensor([one]), torch.tensor([len(one)]), None)
    assert float(m.fluency([one])[0]) == pytest.approx(float(logp[0]) / (len(one) + 1), rel=1e-5)
    assert m.fluency([[]])[0] == -float("inf")
    # a seed keeps its poem, and a version without `sampling.rerank` decodes one line per latent as before
    assert m.sample(seed=3).text == m.sample(seed=3).text
    checkpoints.update_card(vdir, sampling={})
    plain = PoemModel.load("en", root=models)
    assert plain.rerank == 1 and plain.scorer is None and plain.lm_weight == 0 and plain.temperature_scale == 1
    m.rerank = 1
    assert plain.sample(seed=3).text == m.sample(seed=3).text


def test_a_version_that_fuses_draws_each_token_from_the_vae_and_its_lm(trained):
    from genmodels.nets.textvae import BOS_ID
    from genmodels.poetry import RERANK, PoemModel, sampling_for

    vdir, data, models, kw = trained
    fused = sampling_for("zh")  # what a new zh version's card asks for
    assert fused["rerank"] == RERANK and fused["lm_weight"] > 0 and fused["temperature_scale"] < 1
    w, scale = fused["lm_weight"], fused["temperature_scale"]
    checkpoints.update_card(vdir, sampling=fused)  # the tiny en version, asking for the same
    m = PoemModel.load("en", root=models)
    assert (m.lm_weight, m.temperature_scale) == (w, scale)
    vae, lm = m.model, m.scorer
    z = m._spread(torch.zeros(vae.cfg.latent_dim), 1.0, 5, torch.Generator().manual_seed(1))  # (5, D)
    # the weight's ends: 0 is the VAE alone, 1 the LM alone (whatever z says)
    assert vae.greedy(z, prior=lm, prior_weight=0.0) == vae.greedy(z)
    assert vae.greedy(z, prior=lm, prior_weight=1.0) == lm.greedy(None, n=5)
    # in between, each token maximises the mixed log-probabilities: the first token by hand
    bos = torch.full((5, 1), BOS_ID, dtype=torch.long)
    with torch.no_grad():
        lv = torch.log_softmax(vae.decode(bos, z)[0][:, -1], -1)
        ll = torch.log_softmax(lm.decode(bos, None)[0][:, -1], -1)
    mixed = vae._banned((1 - 0.3) * lv + 0.3 * ll, 0, None)
    assert [row[0] for row in vae.greedy(z, prior=lm, prior_weight=0.3)] == mixed.argmax(-1).tolist()
    # the version samples with fusion, at the caller's temperature times its scale: a seed keeps its poem
    g = torch.Generator().manual_seed(4)
    want = vae.sample(z, temperature=0.9 * scale, top_p=0.9, generator=g, prior=lm,
                      prior_weight=w)
    assert m._sample_ids(z, torch.Generator().manual_seed(4), 0.9, 0.9, None) == want
    assert m.sample(seed=3).text == PoemModel.load("en", root=models).sample(seed=3).text


def test_the_nucleus_head_draws_what_a_full_sort_draws():
    from genmodels.nets.textvae import NUCLEUS_HEAD, _sorted_head

    torch.manual_seed(0)
    V = 4 * NUCLEUS_HEAD
    logits = torch.randn(6, V) * torch.tensor([[8.0], [6.0], [4.0], [0.1], [2.0], [5.0]])  # peaked ... nearly flat
    probs = torch.softmax(logits, -1)
    for top_p in (0.5, 0.9, 0.99):
        fast_p, fast_i = _sorted_head(probs, top_p)
        full_p, full_i = probs.sort(dim=-1, descending=True)
        keep_fast = fast_p.cumsum(-1) - fast_p < top_p
        keep_full = full_p.cumsum(-1) - full_p < top_p
        assert torch.equal(keep_fast, keep_full)
        assert torch.equal(fast_p * keep_fast, full_p * keep_full) and torch.equal(fast_i[keep_fast], full_i[keep_full])
        draws = [torch.multinomial(p * k, 1, generator=torch.Generator().manual_seed(5))
                 for p, k in ((fast_p, keep_fast), (full_p, keep_full))]
        assert torch.equal(fast_i.gather(1, draws[0]), full_i.gather(1, draws[1]))
    assert bool((keep_full.sum(1) > NUCLEUS_HEAD).any())  # the flat row took the full sort


def test_bag_of_words_head_is_optional_and_training_only():
    torch.manual_seed(0)
    x = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])  # two lines, PAD = 0
    lengths = torch.tensor([3, 2])
    vae = TextVAE(TextVAEConfig(vocab_size=12, embed_dim=8, enc_hidden=8, dec_hidden=8, latent_dim=4, bow_dim=6))
    terms = vae.elbo_terms(x, lengths)
    assert terms["bow"].shape == (2,) and torch.all(terms["bow"] > 0)
    # the bag-of-words NLL counts real words only: a line's loss grows with its number of words
    assert terms["bow"][0] > terms["bow"][1] * 1.2
    lm = TextVAE(TextVAEConfig(vocab_size=12, embed_dim=8, enc_hidden=8, dec_hidden=8, latent_dim=0, bow_dim=6))
    assert "bow" not in lm.elbo_terms(x, lengths) and not hasattr(lm, "bow_head")
