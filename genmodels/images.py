"""Image generation and morphing: the API the engine and the CLI call.

Like a diffusers pipeline, each class composes a trained model with a sampler, takes a seed or a
`torch.Generator` (a seed is turned into one, so the same seed gives the same pixels) and returns a small output
dataclass (`genmodels.outputs`) that carries the latents behind the images.

- `ImageGenerator`: the EMA generator of the DCGAN; themed samples, and variations near a parent latent.
- `Morpher`: the conv VAE; encodes real images (or emoji) and decodes a slerp path between them.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import checkpoints, paths
from .data import DataError
from .data.emoji import (GROUPS, THEMES, EmojiLibrary, EmojiRenderer, coarse_pixels, from_model, theme_index,
                         to_model)
from .data.imagefile import fit_square, load_image_rgba
from .nets.preference import LatentPreference
from .nets import dataclass_from_dict
from .nets.dcgan import DCGANConfig, Generator
from .nets.features import FeatureNet, FeatureNetConfig
from .nets.vae import ConvVAE, VAEConfig
from .latents import VARIATION_STRENGTH, Generation, generator_for, lineage_latents, slerp, variation
from .outputs import ImageOutput, MorphOutput

MAX_SEED = 2**32 - 1
ANY_STYLE = "any"  # a style drawn from the seed among those the model knows
MAX_COUNT = 16
MAX_FRAMES = 48
GRID_CANDIDATES = 4  # rows drawn per cell of a grid when a version keeps near-copies out and its card names no
# other number (`sampling.candidates`; `distinct_grid`)


def check_seed(seed: int) -> int:
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"The seed must be a whole number from 0 to {MAX_SEED}; got {seed!r}.")
    return seed


def _distinct_indices(spaces: list[tuple[np.ndarray, float]], count: int, fill: bool = True) -> list[int]:
    """``count`` indices into K rows, in order, described in one or more ``spaces``: (vectors (K, D), threshold)
    pairs (coarse pixels; features). Greedily the first rows at least each space's threshold from every row
    already taken, in every space; if too few are, the rest are the rows farthest from those taken, in units of
    each space's threshold, the nearer space counting (``fill=False``: return the fewer). Row 0 is always taken.
    Each choice depends only on the rows before it, so a prefix of the rows that already yields ``count`` gives
    what all of them would."""
    k = len(spaces[0][0])
    taken: list[int] = []
    nearest = [np.full(k, np.inf) for _ in spaces]  # per space: each row's distance to the nearest taken row

    def take(i: int) -> None:
        taken.append(i)
        for near, (vectors, _) in zip(nearest, spaces):
            np.minimum(near, np.linalg.norm(vectors - vectors[i], axis=1), out=near)

    for i in range(k):
        if len(taken) == count:
            break
        if all(near[i] >= thr for near, (_, thr) in zip(nearest, spaces)):
            take(i)
    while fill and len(taken) < count:
        apart = np.min([near / (thr if thr > 0 else 1.0) for near, (_, thr) in zip(nearest, spaces)], axis=0)
        apart[taken] = -1.0
        take(int(np.argmax(apart)))
    return taken


def _as_model(images: list[Image.Image]) -> torch.Tensor:
    """Rendered images (uint8 RGBA, as delivered) back in the models' range: (N, 4, 64, 64)."""
    return to_model(np.stack([np.asarray(im.convert("RGBA")) for im in images]))


def load_feature_net(root=None, device: str = "cpu", version: int | None = None) -> tuple[FeatureNet, dict]:
    """The feature net (the project's own image space: evaluation, and the grid rule of versions that ask for it)
    and its card: ``version`` from `paths.version_root`, or the default one of ``root``."""
    where = paths.find_model("features", root) if version is None else paths.version_root("features", version, root)
    tensors, card = checkpoints.load_version(where, "features", version)
    net = checkpoints.load_into(FeatureNet(dataclass_from_dict(FeatureNetConfig, card["config"])), tensors, "features")
    return net.eval().requires_grad_(False).to(device), card


def _version_tag(card: dict) -> str:
    return checkpoints.full_tag(card["name"], card["version"])


class ImageGenerator:
    """Themed emoji-like images from the DCGAN's EMA generator."""

    def __init__(self, G: Generator, card: dict, device: str | torch.device = "cpu",
                 preference: LatentPreference | None = None, root=None):
        self.G = G.eval().requires_grad_(False).to(device)
        self.preference = preference  # learned from reactions (genmodels.feedback); None = the plain prior
        self.cfg: DCGANConfig = G.cfg
        self.card = card
        self.device = torch.device(device)
        self.version = _version_tag(card)
        self.label_names: list[str] = card.get("data", {}).get("label_names") or GROUPS
        # Grids without near-copies (`distinct_grid`): set in the cards of versions trained with it, else None; the
        # versions since dcgan/v0005 also judge cells in the feature net's space (the net the card names).
        sampling = card.get("sampling", {})
        self.near_copy_pixels: float | None = sampling.get("near_copy_pixels")
        self.near_copy_features: float | None = sampling.get("near_copy_features")
        self.grid_candidates = int(sampling.get("candidates", GRID_CANDIDATES))  # rows drawn per cell of a grid
        self.root = root  # where the feature net is looked for first (`paths.version_root`)
        self._feature_net: FeatureNet | None = None

    @classmethod
    def load(cls, root=None, version: int | None = None, device: str = "cpu") -> "ImageGenerator":
        tensors, card = checkpoints.load_version(paths.find_model("dcgan", root, version), "dcgan", version)
        return cls.from_tensors(tensors, card, device, root)

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], card: dict, device: str = "cpu",
                     root=None) -> "ImageGenerator":
        """The generator of a loaded version: its ``G.`` tensors (the EMA generator) and its preference, if any."""
        G = checkpoints.load_into(Generator(dataclass_from_dict(DCGANConfig, card["config"])), tensors, "dcgan",
                                  prefix="G.")
        gen = cls(G, card, device, LatentPreference.from_version(tensors, card), root)
        if gen.near_copy_features is not None:
            gen.feature_net  # loaded now, not inside the first request that sifts a grid
        return gen

    @property
    def feature_net(self) -> FeatureNet:
        """The feature net this version's grid rule measures in (``sampling.features``); `from_tensors` loads it."""
        if self._feature_net is None:
            version = checkpoints.parse_tag(self.card["sampling"]["features"])  # "features/v0001" -> 1
            self._feature_net = load_feature_net(self.root, self.device, version)[0]
        return self._feature_net

    def _grid_spaces(self, images: list[Image.Image]) -> list[tuple[np.ndarray, float]]:
        """Rendered cells as this version's grid rule compares them (`_distinct_indices`): 16×16 pixels, and
        feature vectors where the card asks, each with its threshold."""
        x = _as_model(images)  # (N, 4, 64, 64)
        spaces = [(coarse_pixels(x), self.near_copy_pixels)]
        if self.near_copy_features is not None:
            with torch.no_grad():
                f = self.feature_net.features(x.to(self.device)).float().cpu().numpy()  # (N, dim)
            spaces.append((f, self.near_copy_features))
        return spaces

    @property
    def themes(self) -> list[str]:
        return THEMES[: self.cfg.n_classes] if self.label_names == GROUPS else self.label_names

    @property
    def styles(self) -> list[str]:
        """The emoji sets this version draws in; the first is the default. Versions trained before styles draw
        Noto's alone (or the user's own folder's)."""
        names = self.card.get("data", {}).get("style_names")
        if names:
            return list(names)
        return ["noto"] if self.card.get("data", {}).get("source", "emoji") == "emoji" else ["folder"]

    def style_index(self, style: str | int | None = None, seed: int | None = None) -> int:
        """The index of ``style`` (a name, an index, None for the default, or "any": one drawn from ``seed``, the
        same for the same seed). Raises ValueError for a style this version does not draw."""
        if style is None:
            return 0
        if isinstance(style, int):
            if not 0 <= style < len(self.styles):
                raise ValueError(f"Unknown style {style}.")
            return style
        name = style.strip().lower()
        if name == ANY_STYLE:
            return (seed or 0) % len(self.styles)
        if name in self.styles:
            return self.styles.index(name)
        raise ValueError(f"This model does not draw the style '{style}'. Choose one of: "
                         f"{', '.join(self.styles + [ANY_STYLE])}.")

    def theme_index(self, theme: str | int) -> int:
        if isinstance(theme, int):
            if not 0 <= theme < self.cfg.n_classes:
                raise ValueError(f"Unknown theme {theme}.")
            return theme
        if self.label_names == GROUPS:
            return theme_index(theme)
        if theme in self.label_names:
            return self.label_names.index(theme)
        raise ValueError(f"Unknown theme '{theme}'. Choose one of: {', '.join(self.label_names)}.")

    def latents(self, seed: int, count: int) -> torch.Tensor:
        """The latents a seed stands for: (count, nz), drawn on the CPU so every device agrees.

        With a learned preference the draw is tilted toward what the community liked (still a pure function of
        the seed and the model version)."""
        return self._draw(torch.Generator().manual_seed(check_seed(seed)), count)

    def lineage_latents(self, lineage: "list[Generation] | tuple[Generation, ...]", theme: str | int | None = None,
                        style: str | int | None = None) -> torch.Tensor:
        """The latents (count, nz) of the last grid of an image lineage, from its seeds alone: the first grid is
        ``latents(seed, count)``, each later one the `variations` of the cell its predecessor picked (see
        `genmodels.latents.lineage_latents`). The engine renders seed jobs through this.

        With the grid's ``theme`` (and ``style``), a version whose card asks for distinct grids draws
        `grid_candidates` times as many rows for each grid and keeps the first that are no near-copies of each
        other as drawn (`distinct_grid`); without, or for older versions, the rows are the plain draws."""
        rows = self.grid_rows(lineage, theme, style)
        if theme is None:
            return rows
        return self.distinct_grid(rows, lineage[-1].count, self.theme_index(theme),
                                  self.style_index(style, lineage[0].seed))

    def grid_rows(self, lineage: "list[Generation] | tuple[Generation, ...]", theme: str | int | None = None,
                  style: str | int | None = None) -> torch.Tensor:
        """The rows the last grid of ``lineage`` is chosen from: for a version that keeps grids distinct (and a
        ``theme`` given), its `grid_candidates` × count candidates, the plain grid first; else the grid itself."""
        if theme is None or self.near_copy_pixels is None:
            return lineage_latents(self.latents, lineage, VARIATION_STRENGTH)
        y, s = self.theme_index(theme), self.style_index(style, lineage[0].seed)
        return lineage_latents(self.latents, lineage, VARIATION_STRENGTH, pick_last=False,
                               pick=lambda rows, n: self.distinct_grid(rows, n, y, s),
                               candidates=self.grid_candidates)

    def is_distinct(self, images: list[Image.Image]) -> bool:
        """Whether a rendered grid holds no near-copies by this version's rule (always, for versions without it)."""
        if self.near_copy_pixels is None:
            return True
        return len(_distinct_indices(self._grid_spaces(images), len(images), fill=False)) == len(images)

    def distinct_grid(self, rows: torch.Tensor, count: int, theme: int, style: int) -> torch.Tensor:
        """``count`` of the latents ``rows`` (K, nz), in order, whose images in (theme, style) are no near-copies of
        each other: their 16×16 pixels lie at least the card's ``sampling.near_copy_pixels`` apart (the 1st
        percentile of the distances between two real training emoji of one theme), and, where the card sets
        ``sampling.near_copy_features``, their feature vectors likewise. The generator can map distant latents to
        one look; this keeps such repeats out of a grid (`_distinct_indices` for the rule)."""
        if self.near_copy_pixels is None or len(rows) <= count:
            return rows[:count]
        return self.sift_grid(rows, count, theme, style)[0]

    @torch.no_grad()
    def sift_grid(self, rows: torch.Tensor, count: int, theme: int, style: int,
                  first: list[Image.Image] | None = None) -> tuple[torch.Tensor, list[Image.Image]]:
        """`distinct_grid`'s latents and their images. Rows are rendered ``count`` at a time (``first``: the first
        chunk's images, already rendered) and judged on the images as delivered (uint8 RGBA), so the engine, which
        renders the plain grid in its batch and passes it as ``first``, chooses as the library does. When the first
        chunk holds no near-copy (`is_distinct`) it is the grid; usually the first chunk or two give a full grid and
        the rest are never rendered."""
        images: list[Image.Image] = []
        chunks: list[list[tuple[np.ndarray, float]]] = []  # per chunk, per space: (vectors, threshold)
        for start in range(0, len(rows), count):
            chunk = rows[start:start + count]
            ims = first if start == 0 and first is not None else self.render(chunk, [theme] * len(chunk),
                                                                             [style] * len(chunk))
            images += ims
            chunks.append(self._grid_spaces(ims))
            spaces = [(np.concatenate([c[i][0] for c in chunks]), chunks[0][i][1]) for i in range(len(chunks[0]))]
            picked = _distinct_indices(spaces, count, fill=start + count >= len(rows))
            if len(picked) == count:
                return rows[picked], [images[i] for i in picked]
        raise AssertionError("unreachable: the last chunk fills the grid")

    def _draw(self, gen: torch.Generator, count: int) -> torch.Tensor:
        if self.preference is not None:
            return self.preference.sample(count, gen)
        return torch.randn(count, self.cfg.nz, generator=gen)

    def fresh_latent(self, generator: torch.Generator) -> torch.Tensor:
        """One latent (nz,) drawn from the caller's (CPU) ``generator`` as the model draws its latents (tilted by a
        learned preference, if any): a group session's newcomer genome (`genmodels.breeding`)."""
        return self._draw(generator, 1)[0]

    def _noise(self, seed: int | None, generator: torch.Generator | None, count: int) -> torch.Tensor:
        """(count, nz): ``latents(seed, count)``, or a draw from the caller's (CPU) generator; neither is seed 0."""
        if generator is None:
            return self.latents(0 if seed is None else seed, count)
        return self._draw(generator_for(seed, generator), count)

    @torch.no_grad()
    def render(self, z: torch.Tensor, labels: torch.Tensor | list[int],
               styles: torch.Tensor | list[int] | None = None) -> list[Image.Image]:
        """Decode a batch of latents (N, nz) with their theme and style indices (None: the default style); the
        engine batches through this."""
        y = torch.as_tensor(labels, dtype=torch.long, device=self.device)
        s = None if styles is None else torch.as_tensor(styles, dtype=torch.long, device=self.device)
        x = self.G(z.to(self.device, torch.float32), y, s)  # (N, 4, 64, 64)
        return [Image.fromarray(a, "RGBA") for a in from_model(x)]

    def _output(self, z: torch.Tensor, y: int, s: int, seed: int | None) -> ImageOutput:
        return ImageOutput(self.render(z, [y] * len(z), [s] * len(z)), z, self.themes[y], y, self.version,
                           seed=seed, style=self.styles[s], style_index=s)

    def generate(self, theme: str | int, count: int = 4, seed: int | None = None, *, style: str | int | None = None,
                 generator: torch.Generator | None = None) -> ImageOutput:
        """``count`` images of ``theme`` in ``style`` (None: the default) from ``seed`` or ``generator`` (at most
        one; neither means seed 0)."""
        if not 1 <= count <= MAX_COUNT:
            raise ValueError(f"count must be between 1 and {MAX_COUNT}.")
        y, s = self.theme_index(theme), self.style_index(style, seed)
        z = self.distinct_grid(self._noise(seed, generator, self._candidates(count)), count, y, s)
        return self._output(z, y, s, None if generator is not None else (seed or 0))

    def from_latents(self, z: torch.Tensor, theme: str | int, style: str | int | None = None) -> ImageOutput:
        """Images of ``theme`` decoded from explicit latents ``z`` (N, nz) (crossovers, mutations, stored rows)."""
        z = torch.as_tensor(z, dtype=torch.float32).detach().cpu()
        if z.ndim != 2 or z.shape[1] != self.cfg.nz or not 1 <= len(z) <= MAX_COUNT:
            raise ValueError(f"latents must have shape (1 to {MAX_COUNT}, {self.cfg.nz}); got {tuple(z.shape)}.")
        return self._output(z, self.theme_index(theme), self.style_index(style), None)

    def variations(self, parent: torch.Tensor, theme: str | int, count: int = 4, seed: int | None = None,
                   strength: float = VARIATION_STRENGTH, *, style: str | int | None = None,
                   generator: torch.Generator | None = None) -> ImageOutput:
        """Children near a parent latent (nz,): `latents.variation` keeps them on the prior's shell. The noise is
        drawn as `generate` draws its latents (``seed`` or ``generator``; neither means seed 0)."""
        y, s = self.theme_index(theme), self.style_index(style, seed)
        eps = self._noise(seed, generator, self._candidates(count))
        z = self.distinct_grid(variation(parent.reshape(1, -1).float(), eps, strength), count, y, s)
        return self._output(z, y, s, None if generator is not None else (seed or 0))

    def _candidates(self, count: int) -> int:
        """Rows drawn for a grid of ``count``: `grid_candidates` times as many when grids are kept distinct."""
        return count if self.near_copy_pixels is None else self.grid_candidates * count


class Morpher:
    """Encode real images with the conv VAE and morph between them along a slerp path."""

    def __init__(self, vae: ConvVAE, card: dict, device: str | torch.device = "cpu"):
        self.vae = vae.eval().requires_grad_(False).to(device)
        self.card = card
        self.device = torch.device(device)
        self.version = _version_tag(card)
        self._renderer: EmojiRenderer | None = None
        self._library: EmojiLibrary | None = None
        self.data_path: Path | None = None  # the prepared dataset emoji of other styles come from (None: the default)

    @classmethod
    def load(cls, root=None, version: int | None = None, device: str = "cpu") -> "Morpher":
        tensors, card = checkpoints.load_version(paths.find_model("vae", root, version), "vae", version)
        return cls.from_tensors(tensors, card, device)

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], card: dict, device: str = "cpu") -> "Morpher":
        vae = checkpoints.load_into(ConvVAE(dataclass_from_dict(VAEConfig, card["config"])), tensors, "vae")
        return cls(vae, card, device)

    def image_from(self, spec: str | Path | bytes | Image.Image, style: str | None = None) -> Image.Image:
        """An input image (64×64 RGBA) from a path, raw bytes, a PIL image, or a single emoji character drawn in
        ``style`` (None or "noto": the emoji font; another set: `emoji_in_style`).

        Bytes and files are decoded by `genmodels.data.imagefile.load_image_rgba`, which reads only PNG,
        JPEG, GIF, WebP and BMP and refuses images too large to decode cheaply: it raises `NotAnImage` or
        `ImageTooLarge` (both `DataError`, from that module). Text that is neither a file nor an emoji
        raises ValueError.
        """
        if isinstance(spec, Image.Image):
            return fit_square(spec)
        if isinstance(spec, (bytes, bytearray, memoryview)):
            return load_image_rgba(spec)
        s = str(spec).strip()
        if Path(s).is_file():
            return load_image_rgba(s)
        if not s or len(s) > 16 or any(c.isascii() and c.isalnum() for c in s):
            raise ValueError(f"'{s[:40]}' is neither an image file nor a single emoji.")
        return self.emoji_image(s, style)

    def emoji_image(self, char: str, style: str | None = None) -> Image.Image:
        """One emoji (64×64 RGBA) drawn in ``style``: None or "noto" with the emoji font, another set from the
        prepared dataset (`emoji_in_style`). The text is never taken for a path, so it is safe for a member's
        input. Raises ValueError for text that is not an emoji of that set, `DataError` for a set not prepared."""
        if style not in (None, "noto"):
            return self.emoji_in_style(char, style)
        if self._renderer is None:
            self._renderer = EmojiRenderer()
        im = self._renderer.render(char)
        if im is None:
            raise ValueError(f"'{char[:40]}' is not an emoji the emoji font can draw.")
        return im

    def emoji_in_style(self, char: str, style: str) -> Image.Image:
        """``char`` as the emoji set ``style`` draws it, read from the prepared image dataset (``data_path``, by
        default ``$MUSE_DATA_DIR/images.npz``). Raises `DataError` without a dataset, ValueError without the design."""
        if self._library is None:
            self._library = EmojiLibrary(self.data_path or paths.data_dir() / "images.npz")
        if style not in self._library.styles:
            have = [s for s in self._library.styles if s != "folder"]  # a folder dataset's own style is not a set
            raise ValueError(f"The prepared emoji hold no '{style}' style; they have: {', '.join(self._library.styles)}. "
                             f"Add it with `muse prepare images --styles {','.join(dict.fromkeys([*have, style]))}` "
                             "(or `muse prepare images` for all four sets), which rebuilds the image dataset.")
        im = self._library.get(char, style)
        if im is None:
            raise ValueError(f"'{char}' is not among the {style} emoji.")
        return im

    @torch.no_grad()
    def encode(self, images: list[Image.Image]) -> torch.Tensor:  # → posterior means (N, latent)
        mu, _ = self.vae.encode(_as_model(images).to(self.device))
        return mu

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> list[Image.Image]:
        return [Image.fromarray(a, "RGBA") for a in from_model(self.vae.decode(z.to(self.device)))]

    def morph(self, a, b, frames: int = 8, styles: tuple[str | None, str | None] = (None, None)) -> MorphOutput:
        """``frames`` images from a to b (both ends included), decoded along the slerp between their codes, with
        those codes (frames, latent): what the feedback store keeps of a morph. ``styles``: the emoji set each end
        is drawn from when it is an emoji (a Noto 🐱 into a Twemoji 🐶). Deterministic: the ends are posterior
        means, so there is nothing to seed."""
        if not 2 <= frames <= MAX_FRAMES:
            raise ValueError(f"frames must be between 2 and {MAX_FRAMES}.")
        za, zb = self.encode([self.image_from(a, styles[0]), self.image_from(b, styles[1])])
        z = slerp(za, zb, torch.linspace(0, 1, frames))
        return MorphOutput(self.decode(z), z, self.version)


# ---- files -------------------------------------------------------------------------------------------------


def _png_bytes(im: Image.Image) -> io.BytesIO:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    buf.seek(0)
    return buf


def grid(images: list[Image.Image], cols: int | None = None, scale: int = 1, pad: int = 0) -> Image.Image:
    """Tile RGBA images on a transparent canvas; ``scale`` upscales each cell with nearest-neighbour (crisp)."""
    if not images:
        raise ValueError("grid needs at least one image")
    n = len(images)
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    w, h = images[0].width * scale, images[0].height * scale
    out = Image.new("RGBA", (cols * w + (cols - 1) * pad, rows * h + (rows - 1) * pad), (0, 0, 0, 0))
    for i, im in enumerate(images):
        cell = im.convert("RGBA").resize((w, h), Image.NEAREST) if scale != 1 else im.convert("RGBA")
        out.paste(cell, ((i % cols) * (w + pad), (i // cols) * (h + pad)))
    return out


def png_bytes(im: Image.Image) -> bytes:
    return _png_bytes(im).getvalue()


def gif_bytes(frames: list[Image.Image], duration_ms: int = 120, scale: int = 1, bounce: bool = False) -> bytes:
    """An animated, looping GIF with binary transparency; ``bounce`` appends the way back (a ping-pong loop)."""
    seq = frames + frames[-2:0:-1] if bounce and len(frames) > 2 else list(frames)
    if scale != 1:
        seq = [f.resize((f.width * scale, f.height * scale), Image.NEAREST) for f in seq]
    buf = io.BytesIO()
    seq[0].save(buf, "GIF", save_all=True, append_images=seq[1:], duration=duration_ms, loop=0, disposal=2)
    return buf.getvalue()


__all__ = [
    "ANY_STYLE", "DataError", "Generation", "ImageGenerator", "ImageOutput", "MAX_SEED", "MorphOutput", "Morpher", "check_seed",
    "gif_bytes", "grid", "png_bytes",
]
