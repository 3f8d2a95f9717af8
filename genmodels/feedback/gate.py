"""The promotion gate: a fine-tuned candidate is served only if its quality and diversity are no worse than its
parent's, within a tolerance.

Metrics (the core's own, on held-out data, through the sampler users see, preference included):

| model | quality | diversity / recognisability |
|---|---|---|
| dcgan | precision (Kynkäänniemi, k = 3) | recall; mean pairwise feature distance within a theme |
| vae | held-out negative ELBO (lower is better) | feature-classifier accuracy on reconstructions |
| textvae-* | held-out negative ELBO per line (lower is better) | distinct-2 of sampled poems |

A higher-is-better metric passes when ``candidate >= reference - tolerance * |reference|``, a lower-is-better one
when ``candidate <= reference + tolerance * |reference|`` (the VAE's held-out negative ELBO of continuous pixels is
below zero, and 15% worse is still 15% of its size), where the references are the parent and the base version the
chain of fine-tunes started from (so drift cannot compound). Non-finite metrics fail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..data.emoji import ImageSet, load_image_dataset
from ..data.poems import PoemDataset
from ..eval_images import evaluate_dcgan, evaluate_vae, load_feature_net, theme_diversity
from ..images import ImageGenerator, Morpher
from ..nets.features import FeatureNet
from ..poetry import PoemModel
from ..training.textvae import dev_scores, lines_to_tensor

# metric -> True when higher is better
GATED = {
    "dcgan": {"precision": True, "recall": True, "theme_diversity": True},
    "vae": {"neg_elbo_nats": False, "classifier_accuracy_reconstructions": True},
    "textvae": {"neg_elbo": False, "distinct2": True},
}


@dataclass
class GateDecision:
    passed: bool
    reasons: list[str] = field(default_factory=list)  # one line per failed metric
    candidate: dict = field(default_factory=dict)
    parent: dict = field(default_factory=dict)

    def summary(self) -> str:
        if self.passed:
            return "passed: " + ", ".join(f"{k} {self.parent[k]:.3f} -> {self.candidate[k]:.3f}"
                                          for k in self.candidate if k in self.parent)
        return "; ".join(self.reasons)


def poem_distinct2(poems: list[str], lang: str) -> float:
    """Distinct bigrams / all bigrams over poems (words for en, characters for zh), within lines."""
    grams = []
    for p in poems:
        for line in p.splitlines():
            toks = line.split() if lang == "en" else [c for c in line if not c.isspace() and c not in "，。"]
            grams += list(zip(toks, toks[1:]))
    return len(set(grams)) / max(1, len(grams))


@torch.no_grad()
def image_metrics(model: ImageGenerator | Morpher, fnet: FeatureNet, data: ImageSet) -> dict:
    if isinstance(model, ImageGenerator):
        m = evaluate_dcgan(model, fnet, data, per_theme=16, draws=3)
        return {k: m[k] for k in ("precision", "recall", "kid", "near_copy_rate", "theme_accuracy_mean",
                                  "theme_diversity")}
    m = evaluate_vae(model, fnet, data, samples=2)
    return {k: m[k] for k in ("neg_elbo_nats", "classifier_accuracy_reconstructions", "accuracy_gap")}


@torch.no_grad()
def text_metrics(poem: PoemModel, ds: PoemDataset, n_poems: int = 64, seed: int = 10_000,
                 n_lines: int = 2000) -> dict:
    x, ln = lines_to_tensor(poem.tok, ds.lines("heldout", n_lines), poem.model.cfg.max_len)  # a fixed sample
    scores = dev_scores(poem.model, x.to(poem.device), ln.to(poem.device))
    poems = [poem.sample(seed + i, lines=4).text for i in range(n_poems)]
    return {"neg_elbo": scores["nelbo"], "kl": scores["kl"], "distinct2": poem_distinct2(poems, poem.lang)}



def compare(model: str, parent, candidate, root, data_dir: Path,
            ds: PoemDataset | None = None) -> tuple[str, dict, dict]:
    """The gate's kind for ``model`` and the parent's and the candidate's metrics on the same held-out data: the
    emoji set's (``data_dir/images.npz``, with the feature net under ``root``) for an image model, ``ds`` for a
    text VAE. Returns (kind, parent metrics, candidate metrics), ready for `decide`."""
    if ds is not None:
        return "textvae", text_metrics(parent, ds), text_metrics(candidate, ds)
    fnet, _ = load_feature_net(root)
    data = load_image_dataset(Path(data_dir) / "images.npz")
    return model, image_metrics(parent, fnet, data), image_metrics(candidate, fnet, data)


def decide(kind: str, candidate: dict, parent: dict, tolerance: float, base: dict | None = None) -> GateDecision:
    """Compare with the parent and, when given, with the base (the version this line of fine-tunes started from),
    so that small losses cannot add up over many promotions."""
    reasons = []
    for ref_name, ref in (("parent", parent), ("base", base)):
        if ref is None:
            continue
        for metric, higher in GATED[kind].items():
            c, p = float(candidate[metric]), float(ref[metric])
            margin = tolerance * abs(p)  # relative to the reference's size: a negative one (the VAE's) too
            if not math.isfinite(c):
                reasons.append(f"{metric} is not finite")
            elif higher and c < p - margin:
                reasons.append(f"{metric} fell from {p:.3f} ({ref_name}) to {c:.3f} (allowed: {p - margin:.3f})")
            elif not higher and c > p + margin:
                reasons.append(f"{metric} rose from {p:.3f} ({ref_name}) to {c:.3f} (allowed: {p + margin:.3f})")
    return GateDecision(not reasons, list(dict.fromkeys(reasons)), candidate, parent)


__all__ = ["GATED", "GateDecision", "decide", "image_metrics", "poem_distinct2", "text_metrics"]
