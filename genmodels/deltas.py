"""Per-server deltas: a server's fine-tune stored as a small set of offsets on the shipped base it was learned on.

A full copy of every model costs about 41 MB per server per version; a delta is a few kilobytes to a few hundred
(docs/MODELS.md, "Per-server deltas", has the sizes and why each model's delta is what it is). Per model:

- **DCGAN** (`DCGANDelta`): FiLM offsets on the generator's class-conditional batch-norm tables (Δγ, Δβ per layer)
  and on its class embedding (Δe), one row for every (theme, style) class (``per_class=False``: 128 + 2·480 =
  1,088 numbers) or one row per class; optionally low-rank offsets on the transposed convolutions
  (``conv_rank``). Without ``conv_rank`` the offsets are looked up per batch row, so one forward pass can carry
  several servers' requests, each with its own delta (`DCGANDeltaBank`, `DeltaGenerator`). The latent preference
  (``pref.*``) travels in the delta: it is already per version.
- **Image VAE** (`VAEDelta`): low-rank offsets on the decoder's transposed convolutions and on ``from_z``, offsets
  of the decoder's batch-norm scales and shifts, and of the decoder's log-scale. The encoder stays the base's.
- **Text VAE** (`TextVAEDelta`): low-rank offsets on the decoder GRU's weight matrices (``weight_ih_l0``,
  ``weight_hh_l0``, the 2-D parameters a GRU module hides from module-level adapters), on ``z_to_h`` and
  ``out_proj``, and full offsets of their biases and of the output bias. The encoder (and so the poem
  preference's space) stays the base's; the poem preference travels in the delta.

A delta file (`save_delta`) is one safetensors file: the delta's tensors (``delta.*``, ``pref.*``) and, in its
header's metadata, a JSON card naming the model, the delta's config and its base (``name``, ``version`` and the
SHA-256 of the base's weights). `load_delta` and `apply` refuse a delta whose base is not the model at hand
(`DeltaBaseMismatch`).

`apply(model, delta)` takes a loaded `ImageGenerator`, `Morpher` or `PoemModel` (the base, loaded once) and
returns one of the same class with the delta merged in. Merged modules share every tensor the delta does not
touch with the base, so applying costs the adapted tensors only (a few milliseconds; `bench.feedback --delta`
times it). `DeltaGenerator` is the unmerged DCGAN (per-row offsets); `merge_dcgan` gives the same outputs
(tests/test_deltas.py).
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoints
from .nets import dataclass_from_dict
from .nets.adapters import (LowRank, LowRankConfig, OffsetTable, film_batch_norm, lora_conv_transpose,
                            lora_linear)
from .nets.dcgan import DCGANConfig, Generator, condition
from .nets.preference import LatentPreference
from .nets.textvae import TextVAE
from .nets.vae import ConvVAE

FORMAT = "muse-delta/1"
DELTA_PREFIX = "delta."


class DeltaBaseMismatch(checkpoints.CheckpointError):
    """A delta learned on another base than the model it is applied to (name, version or weights differ)."""


# ---- configs ---------------------------------------------------------------------------------------------------

@dataclass
class DCGANDeltaConfig:
    per_class: bool = False  # one offset row per (theme, style) class; False: one row shared by all classes
    embed: bool = True  # also an offset of the class embedding (the latent offset of each class)
    conv_rank: int = 0  # > 0: low-rank offsets on the 5 transposed convolutions (then not per batch row)
    conv_alpha: float = 4.0


@dataclass
class VAEDeltaConfig:
    rank: int = 4  # of the decoder's transposed convolutions and from_z
    alpha: float = 4.0
    norms: bool = True  # offsets of the decoder's batch-norm scales and shifts (and its log-scale)


@dataclass
class TextVAEDeltaConfig:
    rank: int = 8
    alpha: float = 8.0
    low_rank: tuple[str, ...] = ("decoder.weight_ih_l0", "decoder.weight_hh_l0", "z_to_h.weight", "out_proj.weight")
    full: tuple[str, ...] = ("decoder.bias_ih_l0", "decoder.bias_hh_l0", "z_to_h.bias", "out_proj.bias", "out_bias")


# ---- DCGAN -----------------------------------------------------------------------------------------------------

def _widths(cfg: DCGANConfig) -> list[int]:
    g = cfg.ngf
    return [8 * g, 4 * g, 2 * g, g]


class DCGANDelta(nn.Module):
    """One server's offsets on a `Generator` (or, stacked by `DCGANDeltaBank`, several servers')."""

    def __init__(self, gcfg: DCGANConfig, cfg: DCGANDeltaConfig, servers: int = 1):
        super().__init__()
        self.gcfg, self.cfg, self.servers = gcfg, cfg, servers
        self.k = gcfg.n_conditions if cfg.per_class else 1  # offset rows per server
        rows = servers * self.k
        self.embed = OffsetTable(rows, gcfg.nz) if cfg.embed else None  # Δe (S·K, nz)
        self.gamma = nn.ModuleList([OffsetTable(rows, w) for w in _widths(gcfg)])  # Δγ_l (S·K, C_l)
        self.beta = nn.ModuleList([OffsetTable(rows, w) for w in _widths(gcfg)])  # Δβ_l (S·K, C_l)
        self.convs = None
        if cfg.conv_rank > 0:
            if servers != 1:
                raise ValueError("low-rank convolution offsets are merged per server; a bank takes FiLM deltas only")
            lr = LowRankConfig(cfg.conv_rank, cfg.conv_alpha)
            w = _widths(gcfg)
            shapes = [(gcfg.nz, w[0], 4, 4)] + [(a, b, 4, 4) for a, b in zip(w, w[1:])] + [(w[-1], gcfg.channels, 4, 4)]
            self.convs = nn.ModuleList([LowRank(s, lr, transposed_conv=True) for s in shapes])

    def rows(self, c: torch.Tensor, server: torch.Tensor | None) -> torch.Tensor:
        """The offset row of each batch row: (B,) from classes c (B,) and servers (B,) (None: server 0)."""
        r = c if self.cfg.per_class else torch.zeros_like(c)
        return r if server is None else server * self.k + r

    def conv(self, i: int) -> LowRank | None:
        return None if self.convs is None else self.convs[i]


class DCGANDeltaBank(DCGANDelta):
    """Several servers' FiLM deltas stacked, so one forward pass serves rows of all of them (server s = row s)."""

    @classmethod
    def stack(cls, deltas: list[DCGANDelta]) -> "DCGANDeltaBank":
        first = deltas[0]
        if any(d.cfg != first.cfg for d in deltas) or first.convs is not None:
            raise ValueError("a bank stacks FiLM deltas of one config")
        bank = cls(first.gcfg, first.cfg, servers=len(deltas))
        with torch.no_grad():
            for name, p in bank.named_parameters():
                p.copy_(torch.cat([dict(d.named_parameters())[name] for d in deltas]))
        return bank.requires_grad_(False)


class DeltaGenerator(nn.Module):
    """A frozen base `Generator` with a `DCGANDelta`, unmerged: the same forward as the base, plus the offsets.

    ``forward(z, y, s, server)``: z (B, nz), y (B,) themes, s (B,) styles or None, server (B,) rows of a bank or None.
    The base always runs in eval mode (its batch-norm statistics are the base's, never updated)."""

    def __init__(self, base: Generator, delta: DCGANDelta):
        super().__init__()
        self.base, self.delta, self.cfg = base.eval().requires_grad_(False), delta, base.cfg

    def train(self, mode: bool = True) -> "DeltaGenerator":
        super().train(mode)
        self.base.eval()
        return self

    def forward(self, z: torch.Tensor, y: torch.Tensor, s: torch.Tensor | None = None,
                server: torch.Tensor | None = None) -> torch.Tensor:
        G, d = self.base, self.delta
        c = condition(self.cfg, y, s)  # (B,)
        r = d.rows(c, server)  # (B,)
        e = G.embed(c) + (d.embed(r) if d.embed is not None else 0.0)  # (B, nz)
        h = (z + e)[:, :, None, None]  # (B, nz, 1, 1)
        for i, (conv, norm) in enumerate(zip(G.convs, G.norms)):
            h = lora_conv_transpose(conv, d.conv(i), h)  # (B, C_i, H, W)
            h = torch.relu(film_batch_norm(norm.bn, norm.gamma(c) + d.gamma[i](r), norm.beta(c) + d.beta[i](r), h))
        return torch.tanh(lora_conv_transpose(G.out, d.conv(len(G.convs)), h))  # (B, 4, 64, 64)


def _share(m: nn.Module) -> nn.Module:
    """A structural copy of ``m`` that shares every parameter and buffer with it (replace some with `_put`)."""
    new = copy.copy(m)
    new._parameters = dict(m._parameters)
    new._buffers = dict(m._buffers)
    new._modules = {k: (None if v is None else _share(v)) for k, v in m._modules.items()}
    if hasattr(m, "_flat_weights"):  # an RNN keeps its weights in a list too (RNNBase.__setattr__ updates it)
        new._flat_weights = list(m._flat_weights)
    return new


def _put(root: nn.Module, name: str, value: torch.Tensor) -> None:
    """Set the parameter ``name`` ("a.b.weight") of ``root`` to a new (frozen) tensor."""
    *path, leaf = name.split(".")
    mod = root.get_submodule(".".join(path)) if path else root
    setattr(mod, leaf, nn.Parameter(value.detach(), requires_grad=False))


@torch.no_grad()
def merge_dcgan(base: Generator, delta: DCGANDelta) -> Generator:
    """A plain `Generator` with one server's delta folded into its tables (and convolutions): same outputs as
    ``DeltaGenerator(base, delta)``, at the base's cost. Shares the untouched tensors with ``base``."""
    if delta.servers != 1:
        raise ValueError("merge one server's delta at a time")
    G = _share(base)
    n = base.cfg.n_conditions
    rows = torch.arange(n) if delta.cfg.per_class else torch.zeros(n, dtype=torch.long)  # (n_conditions,)
    if delta.embed is not None:
        _put(G, "embed.weight", base.embed.weight + delta.embed.weight[rows])
    for i, norm in enumerate(base.norms):
        _put(G, f"norms.{i}.gamma.weight", norm.gamma.weight + delta.gamma[i].weight[rows])
        _put(G, f"norms.{i}.beta.weight", norm.beta.weight + delta.beta[i].weight[rows])
    if delta.convs is not None:
        for i, conv in enumerate(base.convs):
            _put(G, f"convs.{i}.weight", conv.weight + delta.convs[i].delta())
        _put(G, "out.weight", base.out.weight + delta.convs[len(base.convs)].delta())
    return G.eval()


# ---- image VAE -------------------------------------------------------------------------------------------------

def _decoder_leaves(vae: ConvVAE) -> list[tuple[str, nn.Module]]:
    """The decoder's layers in order, by their parameter-name prefix (``decoder.2.0`` ...)."""
    return [(f"decoder.{n}", m) for n, m in vae.decoder.named_modules() if not list(m.children())]


class VAEDelta(nn.Module):
    def __init__(self, base: ConvVAE, cfg: VAEDeltaConfig):
        super().__init__()
        self.cfg = cfg
        lr = LowRankConfig(cfg.rank, cfg.alpha)
        self.from_z = LowRank(tuple(base.from_z.weight.shape), lr)  # (8f·16, latent)
        self.convs = nn.ModuleDict()  # by leaf index, "decoder.2.0" -> "2_0"
        self.norm_w = nn.ParameterDict()
        self.norm_b = nn.ParameterDict()
        for name, m in _decoder_leaves(base):
            key = name[len("decoder."):].replace(".", "_")
            if isinstance(m, nn.ConvTranspose2d):
                self.convs[key] = LowRank(tuple(m.weight.shape), lr, transposed_conv=True)
            elif isinstance(m, nn.BatchNorm2d) and cfg.norms:
                self.norm_w[key] = nn.Parameter(torch.zeros(m.num_features))
                self.norm_b[key] = nn.Parameter(torch.zeros(m.num_features))
        self.log_sigma = nn.Parameter(torch.zeros_like(base.log_sigma)) if cfg.norms else None


class DeltaVAE(nn.Module):
    """A frozen base `ConvVAE` (eval mode) with a `VAEDelta` on its decoder, unmerged. ``encode``, ``decode``,
    ``sigma`` and ``loss_terms`` as the base's."""

    def __init__(self, base: ConvVAE, delta: VAEDelta):
        super().__init__()
        self.base, self.delta, self.cfg = base.eval().requires_grad_(False), delta, base.cfg

    def train(self, mode: bool = True) -> "DeltaVAE":
        super().train(mode)
        self.base.eval()
        return self

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.base.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:  # z (B, latent) -> (B, 4, 64, 64)
        d = self.delta
        h = lora_linear(self.base.from_z, d.from_z, z).view(-1, 8 * self.cfg.nf, 4, 4)
        for name, m in _decoder_leaves(self.base):
            key = name[len("decoder."):].replace(".", "_")
            if isinstance(m, nn.ConvTranspose2d):
                h = lora_conv_transpose(m, d.convs[key], h)
            elif isinstance(m, nn.BatchNorm2d) and key in d.norm_w:
                h = F.batch_norm(h, m.running_mean, m.running_var, m.weight + d.norm_w[key], m.bias + d.norm_b[key],
                                 False, 0.0, m.eps)
            else:
                h = m(h)
        return h

    def sigma(self) -> torch.Tensor:
        ls = self.base.log_sigma + (self.delta.log_sigma if self.delta.log_sigma is not None else 0.0)
        return ls.clamp_min(self.cfg.min_log_sigma)

    def loss_terms(self, x: torch.Tensor, z_noise: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return ConvVAE.loss_terms(self, x, z_noise)  # the base's objective, through this decoder


@torch.no_grad()
def merge_vae(base: ConvVAE, delta: VAEDelta) -> ConvVAE:
    vae = _share(base)
    _put(vae, "from_z.weight", base.from_z.weight + delta.from_z.delta())
    for name, m in _decoder_leaves(base):
        key = name[len("decoder."):].replace(".", "_")
        if key in delta.convs:
            _put(vae, f"{name}.weight", m.weight + delta.convs[key].delta())
        elif key in delta.norm_w:
            _put(vae, f"{name}.weight", m.weight + delta.norm_w[key])
            _put(vae, f"{name}.bias", m.bias + delta.norm_b[key])
    if delta.log_sigma is not None:
        _put(vae, "log_sigma", base.log_sigma + delta.log_sigma)
    return vae.eval()


# ---- text VAE --------------------------------------------------------------------------------------------------

class TextVAEDelta(nn.Module):
    """Offsets on some of a `TextVAE`'s parameters: ``merged(base)`` gives them by name (base + offset)."""

    def __init__(self, base: TextVAE, cfg: TextVAEDeltaConfig):
        super().__init__()
        self.cfg = cfg
        params = dict(base.named_parameters())
        lr = LowRankConfig(cfg.rank, cfg.alpha)
        self.low_rank = nn.ModuleDict({n.replace(".", "_"): LowRank(tuple(params[n].shape), lr)
                                       for n in cfg.low_rank if n in params})
        self.full = nn.ParameterDict({n.replace(".", "_"): nn.Parameter(torch.zeros_like(params[n]))
                                      for n in cfg.full if n in params})
        self.names = {n.replace(".", "_"): n for n in (*cfg.low_rank, *cfg.full) if n in params}

    def merged(self, base: TextVAE) -> dict[str, torch.Tensor]:
        """{parameter name: base value + offset} for every adapted parameter (differentiable in the offsets)."""
        params = dict(base.named_parameters())
        out = {self.names[k]: params[self.names[k]] + lr.delta() for k, lr in self.low_rank.items()}
        out.update({self.names[k]: params[self.names[k]] + p for k, p in self.full.items()})
        return out


class _Method(nn.Module):
    """Calls one method of a module by name, so `torch.func.functional_call` can run any of them."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.m = module

    def forward(self, method: str, *args, **kwargs):
        return getattr(self.m, method)(*args, **kwargs)


def call_with_delta(base: TextVAE, delta: TextVAEDelta, method: str, *args, **kwargs):
    """``base.<method>(*args)`` with the delta's offsets added to its parameters, unmerged (for training: the
    gradient reaches the offsets). A GRU cannot run a low-rank branch apart, so the offsets are added to its
    weights for the call (`torch.func.functional_call`)."""
    params = {f"m.{k}": v for k, v in delta.merged(base).items()}
    return torch.func.functional_call(_Method(base), params, (method, *args), kwargs)


@torch.no_grad()
def merge_textvae(base: TextVAE, delta: TextVAEDelta) -> TextVAE:
    model = _share(base)
    for name, value in delta.merged(base).items():
        _put(model, name, value)
    return model


# ---- the delta as stored ---------------------------------------------------------------------------------------

_CONFIGS = {"dcgan": DCGANDeltaConfig, "vae": VAEDeltaConfig, "textvae": TextVAEDeltaConfig}


def family(model: str) -> str:
    """``dcgan``, ``vae`` or ``textvae`` (both languages) for a model name."""
    return "textvae" if model.startswith("textvae") else model


def base_of(card: dict) -> dict:
    """A base's identity as a delta records it: its name, version and the SHA-256 of its weights."""
    return {"name": card.get("name"), "version": card.get("version"), "sha256": card.get("sha256")}


@dataclass
class Delta:
    """One server's delta: its tensors (``delta.*`` offsets, ``pref.*`` preference) and what it needs to be read."""

    model: str  # the model name of its base: dcgan, vae, textvae-en, textvae-zh
    base: dict  # {"name", "version", "sha256"} of the base it was learned on
    config: Any  # DCGANDeltaConfig | VAEDeltaConfig | TextVAEDeltaConfig
    tensors: dict[str, torch.Tensor]
    card: dict = field(default_factory=dict)  # what the fine-tune recorded (method, votes, preference)

    def meta(self) -> dict:
        return {"format": FORMAT, "model": self.model, "base": self.base, "config": asdict(self.config), **self.card}

    @property
    def n_numbers(self) -> int:
        return sum(v.numel() for v in self.tensors.values())

    def check_base(self, card: dict) -> None:
        """Raise `DeltaBaseMismatch` unless ``card`` (a loaded base's) is this delta's base."""
        have = base_of(card)
        if have != self.base:
            raise DeltaBaseMismatch(
                f"This delta of {self.model} was learned on {self.base['name']}/v{int(self.base['version'] or 0):04d} "
                f"(sha256 {str(self.base['sha256'])[:12]}…), not on {have['name']}/v{int(have['version'] or 0):04d} "
                f"(sha256 {str(have['sha256'])[:12]}…); apply it to its own base, or fine-tune a new delta.")

    def preference(self) -> LatentPreference | None:
        return LatentPreference.from_version(self.tensors, self.card)

    def offsets(self) -> dict[str, torch.Tensor]:
        return {k[len(DELTA_PREFIX):]: v.float() for k, v in self.tensors.items() if k.startswith(DELTA_PREFIX)}


def make_delta(model: str, base_card: dict, cfg, module: nn.Module, extra: dict | None = None,
               preference: LatentPreference | None = None) -> Delta:
    tensors = {DELTA_PREFIX + k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    card = dict(extra or {})
    if preference is not None:
        tensors.update(preference.tensors())
        card["preference"] = preference.card()
    return Delta(model, base_of(base_card), cfg, tensors, card)


def save_delta(path: str | os.PathLike, delta: Delta, half: bool = True) -> Path:
    """One safetensors file: the tensors (fp16 by default, like shipped versions) and the card in its metadata."""
    path = Path(path)
    checkpoints.save_weights_with_meta(path, delta.tensors, {"muse": json.dumps(delta.meta())}, half=half)
    return path


def load_delta(path: str | os.PathLike, base_card: dict | None = None) -> Delta:
    """The delta in ``path``; with ``base_card`` (a loaded base's card), refused unless it is the delta's base."""
    tensors, meta = checkpoints.load_weights_with_meta(path)
    try:
        info = json.loads(meta["muse"])
        if info.get("format") != FORMAT:
            raise ValueError(f"format {info.get('format')!r}")
        model, base = info["model"], info["base"]
        cfg = dataclass_from_dict(_CONFIGS[family(model)], info["config"])
    except (KeyError, ValueError, TypeError) as e:
        raise checkpoints.CheckpointError(f"{path} is not a Muse delta ({e}); re-copy it or fine-tune again.") from e
    if isinstance(cfg, TextVAEDeltaConfig):
        cfg.low_rank, cfg.full = tuple(cfg.low_rank), tuple(cfg.full)
    card = {k: v for k, v in info.items() if k not in ("format", "model", "base", "config")}
    delta = Delta(model, base, cfg, tensors, card)
    if base_card is not None:
        delta.check_base(base_card)
    return delta


def dcgan_module(delta: Delta, gcfg: DCGANConfig) -> DCGANDelta:
    return checkpoints.load_into(DCGANDelta(gcfg, delta.config), delta.offsets(), "dcgan delta")


def vae_module(delta: Delta, base: ConvVAE) -> VAEDelta:
    return checkpoints.load_into(VAEDelta(base, delta.config), delta.offsets(), "vae delta")


def textvae_module(delta: Delta, base: TextVAE) -> TextVAEDelta:
    return checkpoints.load_into(TextVAEDelta(base, delta.config), delta.offsets(), "text VAE delta")


def _with_delta_card(card: dict, delta: Delta) -> dict:
    return {**card, "delta": {"base": delta.base, "config": asdict(delta.config), **delta.card}}


def apply(model: Any, delta: Delta) -> Any:
    """``model`` (a loaded base: `ImageGenerator`, `Morpher` or `PoemModel`) with ``delta`` merged in: a new object
    of the same class that shares the base's untouched tensors, tokenizer, scorer and feature net, and serves the
    delta's preference. Raises `DeltaBaseMismatch` for another base."""
    from .images import ImageGenerator, Morpher
    from .poetry import PoemModel

    delta.check_base(model.card)
    card = _with_delta_card(model.card, delta)
    if isinstance(model, ImageGenerator):
        G = merge_dcgan(model.G, dcgan_module(delta, model.cfg))
        out = ImageGenerator(G, card, model.device, delta.preference(), model.root)
        out._feature_net = model._feature_net
        return out
    if isinstance(model, Morpher):
        out = Morpher(merge_vae(model.vae, vae_module(delta, model.vae)), card, model.device)
        out.data_path = model.data_path
        return out
    if isinstance(model, PoemModel):
        m = merge_textvae(model.model, textvae_module(delta, model.model)).eval()
        return PoemModel(m, model.tok, card, model.lang, model.device, delta.preference(), model.scorer,
                         model.grammar)
    raise TypeError(f"no delta applies to {type(model).__name__}")


def full_tensors(base_tensors: dict[str, torch.Tensor], base_card: dict, delta: Delta) -> dict[str, torch.Tensor]:
    """A full version's tensors equal to base + delta (the base's other tensors, such as the DCGAN's D, as they
    are): what a loader that knows no deltas can serve. Used by the feedback bench to gate and serve a delta."""
    from .images import ImageGenerator, Morpher

    delta.check_base(base_card)
    out = {k: v for k, v in base_tensors.items() if not k.startswith("pref.")}
    fam = family(delta.model)
    if fam == "dcgan":
        gcfg = dataclass_from_dict(DCGANConfig, base_card["config"])
        G = checkpoints.load_into(Generator(gcfg), base_tensors, "dcgan", prefix="G.")
        out.update({f"G.{k}": v for k, v in merge_dcgan(G, dcgan_module(delta, gcfg)).state_dict().items()})
    elif fam == "vae":
        vae = Morpher.from_tensors(base_tensors, base_card).vae
        out.update(merge_vae(vae, vae_module(delta, vae)).state_dict())
    else:
        from .nets.textvae import TextVAEConfig

        m = checkpoints.load_into(TextVAE(dataclass_from_dict(TextVAEConfig, base_card["config"])),
                                  {k: v for k, v in base_tensors.items() if not k.startswith("pref.")}, delta.model)
        out.update(merge_textvae(m, textvae_module(delta, m)).state_dict())
    out.update({k: v for k, v in delta.tensors.items() if k.startswith("pref.")})
    return {k: v.detach().float() for k, v in out.items()}


def from_parts(tensors: dict[str, torch.Tensor], meta: dict) -> Delta:
    """The `Delta` a delta fine-tune returned as (tensors, card) (`genmodels.feedback.finetune`)."""
    cfg = dataclass_from_dict(_CONFIGS[family(meta["model"])], meta["config"])
    if isinstance(cfg, TextVAEDeltaConfig):
        cfg.low_rank, cfg.full = tuple(cfg.low_rank), tuple(cfg.full)
    card = {k: v for k, v in meta.items() if k not in ("format", "model", "base", "config")}
    return Delta(meta["model"], meta["base"], cfg, dict(tensors), card)
