"""Fine-tuning each model on its community's feedback, one method per model (docs/BOT.md, "Learning from reactions").

- **DCGAN** (FBGAN, Gupta & Zou 2019, plus a latent preference): liked images, re-rendered from their stored
  latents by the parent generator, join the discriminator's real set at a capped share; the rest of each real
  batch replays the original data; after each step G is pulled a little back toward the parent. A latent
  preference model (`preference.LatentPreference`) fitted on the latents of liked vs disliked results tilts
  the sampling prior.
- **Image VAE** (reward-weighted likelihood): the ELBO of liked morph frames, weighted by their vote, next to the
  replayed original data, with an L2 penalty to the parent's weights. Disliked morphs are not reinforced (a
  likelihood model has no clean "less of this").
- **Text VAE** (reward-weighted likelihood + unlikelihood, Welleck et al. 2020): liked lines' ELBO weighted by
  their vote, unlikelihood -log(1 - p(token)) on disliked lines, the original data replayed, and an L2 pull to
  the parent's weights (L2-SP, Li et al. 2018). A latent preference on the poem's centre latent tilts sampling.

Every method starts from the parent version, uses a small learning rate and few steps, and returns the new
version's tensors and card; the gate (`gate.py`) decides whether it is served. Feedback items are plain dicts
(``value`` > 0 liked, < 0 disliked; ``latent`` (n, D) rows; ``content`` text; ``params``) so this module needs
neither the store nor Discord.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import checkpoints, deltas
from ..registry import tag
from ..data.emoji import MODEL_STYLES, load_image_dataset, to_model
from ..data.poems import PoemDataset
from ..images import ImageGenerator, Morpher
from ..nets.dcgan import DCGANConfig, Generator
from ..nets.textvae import TextVAE
from ..poetry import LINE_SPREAD, PoemModel
from ..training import common
from ..training.dcgan import DCGANTrainConfig, DCGANTrainer
from ..training.textvae import lines_to_tensor, trim, version_recipe
from ..nets.preference import LatentPreference, PreferenceConfig


class FinetuneError(RuntimeError):
    """A fine-tune that must not be served: its weights went non-finite."""


class NothingToLearn(FinetuneError):
    """The feedback holds nothing this model's method can use (say, only dislikes for the VAE)."""


@dataclass
class FinetuneConfig:
    steps: int = 150  # optimizer steps per image fine-tune
    text_steps: int = 60  # per text fine-tune: at 150, liked lines were memorised (distinct-2 -11%, bench)
    lr_scale: float = 0.25  # times the from-scratch learning rate
    liked_share: float = 0.25  # liked (and disliked) examples per batch, as a share of it; the rest is replay
    liked_weight: float = 1.0  # VAE / text: weight of the reward-weighted term against the replayed data
    unlikelihood: float = 0.5  # text: weight of the unlikelihood term on disliked lines
    anchor: float = 1e-2  # VAE / text: L2 penalty to the parent weights (L2-SP), summed over parameters
    pull: float = 0.01  # DCGAN: after each step, move G this fraction of the way back to the parent (decoupled L2-SP)
    batch: int = 32
    seed: int = 0
    replay_lines: int = 20_000  # text: the fixed sample of training lines replayed (60 steps read under 2,000)
    # At mix 0.5 / spread 0.6 most themes collapsed to copies of one liked image (bench sample sheet).
    image_preference: PreferenceConfig = field(default_factory=lambda: PreferenceConfig(mix=0.25, spread=0.7))
    # Poems drawn near a few liked poems repeat their lines (distinct-2 fell 17% at mix 0.5, and the gate
    # refused it), so for text the preference only ranks candidates from the plain prior.
    text_preference: PreferenceConfig = field(default_factory=lambda: PreferenceConfig(mix=0.0, candidates=6))


def _labels_of(item: dict, n: int, gen: ImageGenerator) -> list[int]:
    """The theme index of each latent row of an image result (from its stored parameters)."""
    p = item.get("params") or {}
    if "labels" in p:
        return [int(v) for v in p["labels"]][:n]
    theme = p.get("theme_index", p.get("theme", 0))
    try:
        y = gen.theme_index(int(theme) if str(theme).isdigit() else theme)
    except ValueError:
        y = 0
    return [y] * n


def _styles_of(item: dict, n: int, gen: ImageGenerator) -> list[int]:
    """The style index of each latent row of an image result (results stored before styles: the default)."""
    p = item.get("params") or {}
    style = p.get("style_index", p.get("style"))
    try:
        s = gen.style_index(int(style) if str(style).isdigit() else style)
    except ValueError:
        s = 0
    return [s] * n


def _votes(items: list[dict]) -> list[dict]:
    return [it for it in items if it.get("value") and it.get("latent") is not None and np.size(it["latent"])]


def fit_preference(z: list[np.ndarray], values: list[float], cfg: PreferenceConfig) -> LatentPreference | None:
    """Preference on latents: each row of a result shares its result's vote (liked = value > 0)."""
    rows, ys, ws = [], [], []
    for lat, v in zip(z, values):
        lat = np.asarray(lat, dtype=np.float32).reshape(-1, np.shape(lat)[-1])
        rows.append(lat)
        ys += [1.0 if v > 0 else 0.0] * len(lat)
        ws += [abs(float(v))] * len(lat)
    if not rows or not any(ys):
        return None
    return LatentPreference.fit(torch.from_numpy(np.concatenate(rows)), torch.tensor(ys), torch.tensor(ws), cfg)


def _l2sp(model: torch.nn.Module, anchor: dict[str, torch.Tensor]) -> torch.Tensor:
    """Σ ||θ - θ_parent||² (L2-SP, Li et al. 2018): keeps a fine-tune close to the model it started from."""
    return sum((p - anchor[k]).pow(2).sum() for k, p in model.named_parameters())


def _step(opt: torch.optim.Optimizer, loss: torch.Tensor, model: torch.nn.Module, clip: float) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()


def _check_finite(tensors: dict[str, torch.Tensor]) -> None:
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise FinetuneError(f"the fine-tune produced non-finite weights ({', '.join(bad[:3])}); nothing is served")


# ---- DCGAN ---------------------------------------------------------------------------------------------------

def _dcgan_pool(parent_gen: ImageGenerator, items: list[dict], data_path: Path, cfg: FinetuneConfig):
    """The votes, the liked ones, and the pool D's real batches come from: the replayed emoji set plus the liked
    images as ``parent_gen`` draws them, repeated to about ``liked_share`` of it. Returns (votes, liked, real
    (N, 4, 64, 64), labels (N,), styles (N,))."""
    mcfg = parent_gen.cfg
    votes = _votes(items)
    if not votes:
        raise NothingToLearn("no votes with latents to learn from")
    liked = [it for it in votes if it["value"] > 0]

    # The parent's own styles (a model trained before styles: the Noto or folder part, as style 0).
    data = load_image_dataset(data_path, parent_gen.styles if mcfg.n_styles > 1 else MODEL_STYLES)
    if mcfg.n_styles > 1:
        keep = [parent_gen.styles.index(n) if n in parent_gen.styles else -1 for n in data.style_names]
        style_codes = np.asarray(keep, dtype=np.int64)[data.train_styles]
    else:
        style_codes = np.zeros(len(data.train_labels), dtype=np.int64)
    real = to_model(data.train_images)  # (N, 4, 64, 64)
    labels = torch.as_tensor(data.train_labels)
    styles = torch.as_tensor(style_codes)
    if liked:
        z = torch.cat([torch.as_tensor(np.asarray(it["latent"], np.float32).reshape(-1, mcfg.nz)) for it in liked])
        rows = [len(np.asarray(it["latent"]).reshape(-1, mcfg.nz)) for it in liked]
        y = sum((_labels_of(it, n, parent_gen) for it, n in zip(liked, rows)), [])
        st = sum((_styles_of(it, n, parent_gen) for it, n in zip(liked, rows)), [])
        with torch.no_grad():
            liked_x = parent_gen.G(z, torch.tensor(y), torch.tensor(st)).float()  # (L, 4, 64, 64)
        # Repeat the liked images so they make up about `liked_share` of the pool D's real batches come from.
        reps = max(1, round(cfg.liked_share / (1 - cfg.liked_share) * len(real) / len(liked_x)))
        real = torch.cat([real, liked_x.repeat(reps, 1, 1, 1)])
        labels = torch.cat([labels, torch.tensor(y).repeat(reps)])
        styles = torch.cat([styles, torch.tensor(st).repeat(reps)])
    return votes, liked, real, labels, styles


def finetune_dcgan(parent: tuple[dict, dict], items: list[dict], data_path: Path, cfg: FinetuneConfig,
                   device: torch.device) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, card = parent
    mcfg = common.dataclass_from_dict(DCGANConfig, card["config"])
    pcfg = common.dataclass_from_dict(DCGANTrainConfig, card.get("train_config", {}))
    G = Generator(mcfg)
    checkpoints.load_into(G, tensors, "dcgan", prefix="G.")
    parent_gen = ImageGenerator(G, card)
    votes, liked, real, labels, styles = _dcgan_pool(parent_gen, items, data_path, cfg)

    tcfg = replace(pcfg, steps=cfg.steps, lr_g=pcfg.lr_g * cfg.lr_scale, lr_d=pcfg.lr_d * cfg.lr_scale,
                   batch=min(pcfg.batch, 2 * cfg.batch), ema_start=0, ema_decay=0.9, seed=cfg.seed)
    tr = DCGANTrainer(real, labels, mcfg, tcfg, device, styles)
    tr.G.load_state_dict(G.state_dict())
    tr.G_ema.load_state_dict(G.state_dict())
    checkpoints.load_into(tr.D, tensors, "dcgan", prefix="D.")
    parent_g = [p.detach().clone() for p in tr.G.parameters()]
    for i in range(cfg.steps):
        tr.step(i)
        with torch.no_grad():  # stay close to the parent: the adversarial loss has no likelihood to anchor
            for p, p0 in zip(tr.G.parameters(), parent_g):
                p.lerp_(p0, cfg.pull)
    out = {k: v.detach().cpu() for k, v in tr.release_tensors().items()}
    _check_finite(out)
    pref = fit_preference([it["latent"] for it in votes], [it["value"] for it in votes], cfg.image_preference)
    extra = {"finetune": {"method": "FBGAN liked-as-real + pull to parent + latent preference",
                          "liked": len(liked), "pull": cfg.pull,
                          "votes": len(votes), "steps": cfg.steps, "lr_scale": cfg.lr_scale,
                          "liked_share": cfg.liked_share}}
    if pref is not None:
        out.update(pref.tensors())
        extra["preference"] = pref.card()
    return out, extra


# ---- image VAE -----------------------------------------------------------------------------------------------

def _liked_frames(vae: torch.nn.Module, items: list[dict], device) -> tuple[list[dict], torch.Tensor, torch.Tensor]:
    """The liked morphs, their frames (N, 4, 64, 64) decoded by ``vae`` in eval mode from their stored latent rows,
    and each frame's weight, its result's vote (N,)."""
    liked = [it for it in _votes(items) if it["value"] > 0]
    if not liked:
        raise NothingToLearn("no liked morphs to learn from")
    rows = [np.asarray(it["latent"], np.float32).reshape(-1, vae.cfg.latent) for it in liked]
    z = torch.cat([torch.as_tensor(r) for r in rows])
    w = torch.cat([torch.full((len(r),), float(it["value"])) for r, it in zip(rows, liked)])
    training = vae.training
    with torch.no_grad():
        vae.eval()
        frames = vae.decode(z.to(device)).float()
        vae.train(training)
    return liked, frames, w


def _train_vae(vae: torch.nn.Module, trained: torch.nn.Module, real: torch.Tensor, liked_x: torch.Tensor,
               w: torch.Tensor, cfg: FinetuneConfig, device, lr: float) -> None:
    """The VAE fine-tune's steps: the ELBO of replayed real images next to liked frames ``liked_x`` weighted by
    their votes ``w``, with an L2-SP pull of ``trained``'s parameters (the whole VAE, or a delta on it) toward
    where they started. ``vae`` computes the losses."""
    anchor = {k: v.detach().clone() for k, v in trained.named_parameters()}
    opt = torch.optim.Adam(trained.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.steps):
        xr = real[common.batch_indices(len(real), cfg.batch, gen, device)]
        li = common.batch_indices(len(liked_x), min(cfg.batch, len(liked_x)), gen, device)
        rt = vae.loss_terms(xr)
        lt = vae.loss_terms(liked_x[li])
        wl = float(w[li.cpu()].mean()) * cfg.liked_weight
        loss = rt["nll"] + rt["kl"] + wl * (lt["nll"] + lt["kl"])
        _step(opt, loss + cfg.anchor * _l2sp(trained, anchor), trained, clip=100.0)


def finetune_vae(parent: tuple[dict, dict], items: list[dict], data_path: Path, cfg: FinetuneConfig,
                 device: torch.device) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, card = parent
    morpher = Morpher.from_tensors(tensors, card)
    vae = morpher.vae.train().requires_grad_(True).to(device)
    liked, liked_x, w = _liked_frames(vae, items, device)  # the frames people liked, as the parent drew them
    styles = card.get("data", {}).get("style_names") or MODEL_STYLES  # replay what the parent learned from
    real = to_model(load_image_dataset(data_path, styles).train_images).to(device)
    _train_vae(vae, vae, real, liked_x, w, cfg, device, lr=5e-4 * cfg.lr_scale)
    out = {k: v.detach().cpu() for k, v in vae.state_dict().items()}
    _check_finite(out)
    return out, {"finetune": {"method": "reward-weighted ELBO on liked morph frames + replay + L2-SP",
                              "liked": len(liked), "steps": cfg.steps, "lr_scale": cfg.lr_scale}}


# ---- text VAE ------------------------------------------------------------------------------------------------

def poem_lines(text: str, lang: str) -> list[str]:
    """The lines the text VAE models: English lines, or Chinese clauses (split at punctuation)."""
    if lang == "zh":
        return [c for c in re.split(r"[，。！？；、,.!?;\s]+", text) if c]
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def _unlikelihood(model: TextVAE, x: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mean over lines of Σ_t -log(1 - p(x_t | x_<t, z)) (Welleck et al. 2020): pushes disliked lines down."""
    B, T = x.shape
    bos = torch.full((B, 1), 2, dtype=torch.long, device=x.device)  # BOS_ID
    logits, _ = model.decode(torch.cat([bos, x[:, :-1]], 1), z)  # (B, T, V)
    p = logits.float().softmax(-1).gather(-1, x.unsqueeze(-1)).squeeze(-1)  # (B, T)
    mask = torch.arange(T, device=x.device)[None] < lengths[:, None]
    return (-(1 - p).clamp_min(1e-6).log() * mask).sum(1).mean()


def _minibatch(b: tuple[torch.Tensor, ...], n: int, gen: torch.Generator, device) -> tuple[torch.Tensor, ...]:
    idx = common.batch_indices(len(b[0]), n, gen, device)
    return tuple(t[idx] for t in b)


def _poem_preference(poem: PoemModel, voted: list[dict], cfg: FinetuneConfig) -> LatentPreference | None:
    """The preference lives in the space of a poem's centre latent: the mean of its lines' posterior means,
    rescaled by 1/√(1 - LINE_SPREAD) (lines are √(1-s)·centre + √s·ε), re-encoded by the parent."""
    lang, L = poem.lang, poem.model.cfg.max_len
    feats, vals = [], []
    for it in voted:
        lines = poem_lines(it["content"], lang)
        if not lines:
            continue
        x, ln = lines_to_tensor(poem.tok, lines, L)
        if len(x) == 0:
            continue
        with torch.no_grad():
            mu, _ = poem.model.encode(x.to(poem.device), ln.to(poem.device))
        feats.append((mu.mean(0) / math.sqrt(1 - LINE_SPREAD)).cpu().numpy()[None])
        vals.append(float(it["value"]))
    return fit_preference(feats, vals, cfg.text_preference)


def _rated_poems(items: list[dict]) -> list[dict]:
    voted = [it for it in items if it.get("value") and it.get("content")]
    if not voted:
        raise NothingToLearn("no rated poems to learn from")
    return voted


def _train_text(model: Any, trained: torch.nn.Module, anchor: dict[str, torch.Tensor], poem: PoemModel, card: dict,
                voted: list[dict], ds: PoemDataset, cfg: FinetuneConfig, device: torch.device,
                lr: float) -> tuple[list, list]:
    """The text fine-tune's steps: reward-weighted ELBO of liked lines (the version's own objective, at beta = 1)
    next to replayed training lines, unlikelihood on disliked lines, and an L2-SP pull of ``trained``'s parameters
    (the whole VAE, or a delta on it) toward ``anchor``. ``model`` computes the losses (the VAE, or the base seen
    through the delta). Returns the (line, weight) pairs liked and disliked."""
    lang = poem.lang
    liked = [(ln, float(it["value"])) for it in voted if it["value"] > 0 for ln in poem_lines(it["content"], lang)]
    disliked = [(ln, -float(it["value"])) for it in voted if it["value"] < 0 for ln in poem_lines(it["content"], lang)]

    L = model.cfg.max_len
    xr, lr_ = (t.to(device) for t in lines_to_tensor(poem.tok, ds.lines("train", cfg.replay_lines), L))
    recipe = version_recipe(card, lang)

    def elbo(x, ln):  # per line (B,): the training objective of `training.textvae`, at beta = 1
        t = model.elbo_terms(trim(x, ln), ln, word_dropout=recipe.word_dropout)
        kl = t["kl"].sum(1)
        # the KL threshold applies to the batch's mean KL there; per line here, so liked lines keep their latent
        out = t["rec"] + torch.clamp(kl, min=recipe.kl_target)
        return out + recipe.bow_weight * t["bow"] if "bow" in t else out

    def as_batch(pairs):
        if not pairs:
            return None
        x, ln = lines_to_tensor(poem.tok, [p for p, _ in pairs], L)
        return x.to(device), ln.to(device), torch.tensor([w for _, w in pairs], device=device)

    liked_b, disliked_b = as_batch(liked), as_batch(disliked)
    opt = torch.optim.Adam(trained.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    share = max(1, round(cfg.batch * cfg.liked_share))
    for _ in range(cfg.text_steps):
        idx = common.batch_indices(len(xr), cfg.batch, gen, device)
        loss = elbo(xr[idx], lr_[idx]).mean()
        if liked_b is not None:  # a few liked lines per step (the rest is replay), weighted by their votes
            x, ln, w = _minibatch(liked_b, share, gen, device)
            loss = loss + cfg.liked_weight * (elbo(x, ln) * w).sum() / w.sum()
        if disliked_b is not None and cfg.unlikelihood > 0:
            x, ln, w = _minibatch(disliked_b, share, gen, device)
            x = trim(x, ln)
            mu, _ = model.encode(x, ln)
            loss = loss + cfg.unlikelihood * _unlikelihood(model, x, ln, mu)
        _step(opt, loss + cfg.anchor * _l2sp(trained, anchor), trained, clip=5.0)
    return liked, disliked


def finetune_textvae(parent: tuple[dict, dict], items: list[dict], ds: PoemDataset, cfg: FinetuneConfig,
                     device: torch.device, *, poem: PoemModel) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``ds``: the poem dataset of the model's language, whose training lines are replayed (a fixed sample)."""
    tensors, card = parent
    model = copy.deepcopy(poem.model).to(device).train()
    anchor = {k: v.detach().clone() for k, v in model.named_parameters()}
    voted = _rated_poems(items)
    liked, disliked = _train_text(model, model, anchor, poem, card, voted, ds, cfg, device, lr=1e-3 * cfg.lr_scale)
    out = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    _check_finite(out)

    pref = _poem_preference(poem, voted, cfg)
    extra = {"finetune": {"method": "reward-weighted ELBO + unlikelihood + L2-SP + latent preference",
                          "liked_lines": len(liked), "disliked_lines": len(disliked), "steps": cfg.text_steps,
                          "lr_scale": cfg.lr_scale, "anchor": cfg.anchor}}
    if pref is not None:
        out.update(pref.tensors())
        extra["preference"] = pref.card()
    return out, extra



# ---- delta variants: the same objectives, training only a per-server delta on the frozen base -------------------
#
# Each takes the base version (tensors, card) and, to continue a server's line, the server's current delta
# (``init``; None: a fresh, zero delta, which draws exactly as the base does). The liked examples are drawn by
# base + init, the pull / L2-SP anchor is to init, and the base's tensors never change. Each returns the delta's
# tensors (``delta.*`` offsets, ``pref.*`` preference) and its card (`deltas.Delta.meta`): `deltas.from_parts`
# makes the `Delta` that `deltas.save_delta` writes. docs/MODELS.md ("Per-server deltas") says what each adapts.


@dataclass
class DeltaFinetuneConfig:
    # The offsets start at zero and are few, so they take a larger step than the full fine-tune's 0.25 × the
    # from-scratch rate (the DCGAN's D, not part of the delta, keeps the full fine-tune's rate).
    lr_scale: float = 1.0  # times the from-scratch learning rate, for the delta's parameters
    dcgan: deltas.DCGANDeltaConfig = field(default_factory=lambda: deltas.DCGANDeltaConfig(per_class=True))
    vae: deltas.VAEDeltaConfig = field(default_factory=deltas.VAEDeltaConfig)
    textvae: deltas.TextVAEDeltaConfig = field(default_factory=deltas.TextVAEDeltaConfig)


def finetune_dcgan_delta(parent: tuple[dict, dict], items: list[dict], data_path: Path, cfg: FinetuneConfig,
                         device: torch.device, *, init: deltas.Delta | None = None,
                         dcfg: DeltaFinetuneConfig | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """`finetune_dcgan` (FBGAN liked-as-real, pull to the parent, latent preference) on a `deltas.DCGANDelta`:
    FiLM offsets of G's condition tables (and low-rank convolution offsets if its config asks). D starts from the
    base's D every time: it is training machinery, not part of what a server stores."""
    dcfg = dcfg or DeltaFinetuneConfig()
    tensors, card = parent
    mcfg = common.dataclass_from_dict(DCGANConfig, card["config"])
    pcfg = common.dataclass_from_dict(DCGANTrainConfig, card.get("train_config", {}))
    base = checkpoints.load_into(Generator(mcfg), tensors, "dcgan", prefix="G.").eval().requires_grad_(False)
    dc = init.config if init is not None else dcfg.dcgan
    delta = deltas.dcgan_module(init, mcfg) if init is not None else deltas.DCGANDelta(mcfg, dc)
    parent_gen = ImageGenerator(deltas.merge_dcgan(base, delta), card)  # the server's model as it is now
    votes, liked, real, labels, styles = _dcgan_pool(parent_gen, items, data_path, cfg)

    tcfg = replace(pcfg, steps=cfg.steps, lr_g=pcfg.lr_g * dcfg.lr_scale, lr_d=pcfg.lr_d * cfg.lr_scale,
                   batch=min(pcfg.batch, 2 * cfg.batch), ema_start=0, ema_decay=0.9, seed=cfg.seed)
    tr = DCGANTrainer(real, labels, mcfg, tcfg, device, styles)
    checkpoints.load_into(tr.D, tensors, "dcgan", prefix="D.")
    base = base.to(device)
    tr.G = deltas.DeltaGenerator(base, delta.to(device).requires_grad_(True)).train()  # one base, two deltas:
    tr.G_ema = deltas.DeltaGenerator(base, copy.deepcopy(delta).requires_grad_(False)).eval()  # EMA lerps base to itself
    tr.opt_g = torch.optim.Adam(delta.parameters(), lr=tcfg.lr_g, betas=(tcfg.beta1, tcfg.beta2))
    parent_d = [p.detach().clone() for p in delta.parameters()]
    for i in range(cfg.steps):
        tr.step(i)
        with torch.no_grad():  # pull the offsets back toward the server's current ones (zero for a fresh delta)
            for p, p0 in zip(delta.parameters(), parent_d):
                p.lerp_(p0, cfg.pull)
    pref = fit_preference([it["latent"] for it in votes], [it["value"] for it in votes], cfg.image_preference)
    extra = {"finetune": {"method": "FBGAN liked-as-real + pull to parent + latent preference, on a FiLM delta",
                          "liked": len(liked), "pull": cfg.pull, "votes": len(votes), "steps": cfg.steps,
                          "lr_scale": dcfg.lr_scale, "liked_share": cfg.liked_share}}
    d = deltas.make_delta("dcgan", card, dc, tr.G_ema.delta.cpu(), extra, pref)
    _check_finite(d.tensors)
    return d.tensors, d.meta()


def finetune_vae_delta(parent: tuple[dict, dict], items: list[dict], data_path: Path, cfg: FinetuneConfig,
                       device: torch.device, *, init: deltas.Delta | None = None,
                       dcfg: DeltaFinetuneConfig | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """`finetune_vae` (reward-weighted ELBO on liked frames + replay + L2-SP) on a `deltas.VAEDelta` (the decoder's
    offsets; the encoder and the batch-norm statistics stay the base's)."""
    dcfg = dcfg or DeltaFinetuneConfig()
    tensors, card = parent
    base = Morpher.from_tensors(tensors, card).vae.to(device)
    vc = init.config if init is not None else dcfg.vae
    delta = (deltas.vae_module(init, base) if init is not None else deltas.VAEDelta(base, vc)).to(device)
    vae = deltas.DeltaVAE(base, delta.requires_grad_(True)).train()
    liked, liked_x, w = _liked_frames(vae, items, device)  # as the server's model (base + init) drew them
    styles = card.get("data", {}).get("style_names") or MODEL_STYLES
    real = to_model(load_image_dataset(data_path, styles).train_images).to(device)
    _train_vae(vae, delta, real, liked_x, w, cfg, device, lr=5e-4 * dcfg.lr_scale)
    extra = {"finetune": {"method": "reward-weighted ELBO on liked morph frames + replay + L2-SP, on a decoder delta",
                          "liked": len(liked), "steps": cfg.steps, "lr_scale": dcfg.lr_scale}}
    d = deltas.make_delta("vae", card, vc, delta.cpu(), extra)
    _check_finite(d.tensors)
    return d.tensors, d.meta()


class _WithDelta:
    """A base `TextVAE` seen through a delta: ``encode``, ``decode``, ``elbo_terms`` ... run with the offsets added
    (`deltas.call_with_delta`), so the full fine-tune's losses apply unchanged."""

    def __init__(self, base: TextVAE, delta: deltas.TextVAEDelta):
        self.base, self.delta, self.cfg = base, delta, base.cfg

    def __getattr__(self, method: str):
        return lambda *a, **k: deltas.call_with_delta(self.base, self.delta, method, *a, **k)


def finetune_textvae_delta(parent: tuple[dict, dict], items: list[dict], ds: PoemDataset, cfg: FinetuneConfig,
                           device: torch.device, *, poem: PoemModel, init: deltas.Delta | None = None,
                           dcfg: DeltaFinetuneConfig | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """`finetune_textvae` (reward-weighted ELBO + unlikelihood + L2-SP + poem preference) on a
    `deltas.TextVAEDelta` (the decoder's offsets). ``poem``: the base, as loaded (its encoder gives the preference's
    space, as in the full method)."""
    dcfg = dcfg or DeltaFinetuneConfig()
    tensors, card = parent
    lang = poem.lang
    base = deltas._share(poem.model).to(device).train()  # its own train/eval flags, the base's tensors
    for p in base.parameters():
        p.requires_grad_(False)
    tc = init.config if init is not None else dcfg.textvae
    delta = (deltas.textvae_module(init, base) if init is not None else deltas.TextVAEDelta(base, tc)).to(device)
    delta.requires_grad_(True)
    model = _WithDelta(base, delta)
    anchor = {k: v.detach().clone() for k, v in delta.named_parameters()}
    voted = _rated_poems(items)
    liked, disliked = _train_text(model, delta, anchor, poem, card, voted, ds, cfg, device, lr=1e-3 * dcfg.lr_scale)
    pref = _poem_preference(poem, voted, cfg)
    extra = {"finetune": {"method": "reward-weighted ELBO + unlikelihood + L2-SP + latent preference, on a decoder delta",
                          "liked_lines": len(liked), "disliked_lines": len(disliked), "steps": cfg.text_steps,
                          "lr_scale": dcfg.lr_scale, "anchor": cfg.anchor}}
    d = deltas.make_delta(poem.card.get("name", f"textvae-{lang}"), card, tc, delta.cpu(), extra, pref)
    _check_finite(d.tensors)
    return d.tensors, d.meta()


def replay_mismatch(card: dict, ds) -> str | None:
    """A line saying so when the poem dataset a fine-tune replays and gates on is not the one the version learned
    from (a `muse prepare poems` never run, or another corpus in the data dir), else None. The fine-tune still
    runs: the built-in corpus is the offline fallback, but its poems are not the ones the model knows."""
    learned = card.get("data", {}).get("sha256")
    if learned is None or learned == ds.sha256:
        return None
    return (f"{card.get('name')}/{tag(card.get('version', 0))} learned from other poems than {ds.path}; the "
            "fine-tune replays and gates on these (run `muse prepare poems` to build the corpus it learned from)")
