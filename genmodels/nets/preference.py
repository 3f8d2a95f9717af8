"""A latent preference model: what a community likes, as a tilt of the sampling prior.

Model (InterFaceGAN-style, Shen et al. 2020, plus an exemplar prior)::

    s(z)     = w·z + b                                    logistic regression on latents of liked (y=1) vs disliked (y=0)
    q(z)     = (1 - mix) N(0, I)  +  mix · (1/M) Σ_m N(√(1-σ²) e_m, σ² I)     e_m: latents of liked results
    sample   = argmax_{c = 1..C} s(z_c),  z_c ~ q                              best of C candidates

Every candidate is a draw from (a mixture close to) the prior, so samples stay where the generator was trained;
the preference only decides which ones are shown. It is instant to fit, small (D + 1 + M·D numbers, stored in the
model version as ``pref.*`` tensors), and reversible: rolling back the version removes it.

Shapes: D latent size, N feedback items, M exemplars, C candidates per sample.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from ..latents import variation


@dataclass
class PreferenceConfig:
    l2: float = 1.0  # ridge penalty on w: with N ≈ D items, weaker penalties fit noise (train accuracy 1.0)
    mix: float = 0.5  # share of samples drawn near liked exemplars
    spread: float = 0.6  # σ: how far a sample wanders from its exemplar (0 = copy, 1 = the plain prior)
    candidates: int = 4  # C: best-of-C by the preference score
    max_exemplars: int = 256  # M: the most recent likes kept


class LatentPreference:
    def __init__(self, w: torch.Tensor, b: torch.Tensor, exemplars: torch.Tensor, cfg: PreferenceConfig,
                 stats: dict | None = None):
        self.w = w.float().reshape(-1)  # (D,)
        self.b = b.float().reshape(())
        self.exemplars = exemplars.float().reshape(-1, self.w.numel())  # (M, D)
        self.cfg = cfg
        self.stats = dict(stats or {})

    @property
    def dim(self) -> int:
        return self.w.numel()

    @classmethod
    def fit(cls, z: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None,
            cfg: PreferenceConfig | None = None) -> "LatentPreference":
        """z (N, D) latents, y (N,) in {0, 1} (liked = 1), weight (N,) >= 0 (vote strength)."""
        cfg = cfg or PreferenceConfig()
        z, y = z.float(), y.float()
        weight = torch.ones_like(y) if weight is None else weight.float()
        D = z.shape[1]
        w = torch.zeros(D, requires_grad=True)
        b = torch.zeros((), requires_grad=True)
        if y.min() < y.max():  # both classes seen: fit the direction; otherwise only the exemplars speak
            pos = float((weight * y).sum()) / float(weight.sum())
            with torch.no_grad():
                b.fill_(math.log(max(pos, 1e-3) / max(1 - pos, 1e-3)))
            opt = torch.optim.LBFGS([w, b], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad()
                nll = torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, y, weight=weight)
                loss = nll + cfg.l2 * w.pow(2).sum()
                loss.backward()
                return loss

            opt.step(closure)
        liked = z[(y > 0.5) & (weight > 0)][-cfg.max_exemplars:]
        with torch.no_grad():
            acc = float((((z @ w + b) > 0).float() == y).float().mean()) if len(y) else 0.0
        stats = {"n": int(len(y)), "n_liked": int((y > 0.5).sum()), "train_accuracy": round(acc, 4)}
        return cls(w.detach(), b.detach(), liked.detach(), cfg, stats)

    def score(self, z: torch.Tensor) -> torch.Tensor:
        """Preference logits s(z): (..., D) -> (...)."""
        return z.float() @ self.w + self.b

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n latents (n, D) from the tilted prior; deterministic for a given generator state."""
        C, D, M = self.cfg.candidates, self.dim, len(self.exemplars)
        z = torch.randn(n, C, D, generator=generator)  # (n, C, D)
        pick = torch.rand(n, C, generator=generator)  # which candidates come from an exemplar
        idx = torch.randint(max(M, 1), (n, C), generator=generator)
        if M > 0 and self.cfg.mix > 0:
            s = self.cfg.spread
            near = variation(self.exemplars[idx], z, s)  # stays on the prior's shell on average
            z = torch.where((pick < self.cfg.mix).unsqueeze(-1), near, z)
        best = self.score(z).argmax(1)  # (n,)
        return z[torch.arange(n), best]

    # ---- storage: tensors inside the model version, the rest in its card ----

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"pref.w": self.w, "pref.b": self.b.reshape(1), "pref.exemplars": self.exemplars}

    def card(self) -> dict:
        return {"config": asdict(self.cfg), **self.stats}

    @classmethod
    def from_version(cls, tensors: dict[str, torch.Tensor], card: dict) -> "LatentPreference | None":
        """The preference stored in a model version, or None when the version has none."""
        if "pref.w" not in tensors or "preference" not in card:
            return None
        info = card["preference"]
        cfg = PreferenceConfig(**info.get("config", {}))
        stats = {k: v for k, v in info.items() if k != "config"}
        return cls(tensors["pref.w"], tensors["pref.b"], tensors["pref.exemplars"], cfg, stats)
