"""The emoji image set: Noto Color Emoji rendered to 64×64 RGBA, labelled with the 9 Unicode emoji groups.

Sources (Debian packages, nothing downloaded):
- ``fonts-noto-color-emoji``: ``/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf`` (SIL OFL);
- ``unicode-data``: ``/usr/share/unicode/emoji/emoji-test.txt`` (the emoji list, with groups and subgroups).

Decisions, and why:
- Only fully-qualified emoji of the 9 groups (the "Component" group holds skin-tone swatches and hair parts).
- Emoji the font draws empty, or as several glyphs side by side (newer ZWJ sequences), are dropped.
- Skin-tone variants are near-duplicates of their base emoji. They are left out by default (``skin_tones``
  turns them on) and the held-out split is drawn by *base* emoji, so a variant never leaks across splits
  and memorisation cannot pass for quality.
- Alpha is kept. The file stores straight (non-premultiplied) RGBA uint8; the models see premultiplied
  RGBA in [-1, 1] (see `to_model` / `from_model`), so fully transparent pixels carry no stray colour.

A user's own folder of images goes through `build_folder_dataset`: every readable image (decoded by
`genmodels.data.imagefile`, which accepts PNG, JPEG, GIF, WebP and BMP only) is centred on a square
transparent canvas and resized to 64×64; sub-folder names become the labels.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from . import DataError
from .imagefile import IMAGE_EXTS, load_image_rgba  # noqa: F401 - load_image_rgba is re-exported

FONT_PATH = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_TEST_PATH = Path("/usr/share/unicode/emoji/emoji-test.txt")

GROUPS = [
    "Smileys & Emotion",
    "People & Body",
    "Animals & Nature",
    "Food & Drink",
    "Travel & Places",
    "Activities",
    "Objects",
    "Symbols",
    "Flags",
]
# Short theme names used on the command line and in Discord (`/image theme:animals`).
THEMES = ["smileys", "people", "animals", "food", "travel", "activities", "objects", "symbols", "flags"]
SKIN_TONES = {0x1F3FB, 0x1F3FC, 0x1F3FD, 0x1F3FE, 0x1F3FF}

SIZE = 64
_CANVAS = 136  # Noto Color Emoji bitmaps are 136 px wide at size 109
_FONT_SIZE = 109


@dataclass(frozen=True)
class EmojiEntry:
    char: str
    name: str
    group: int  # index into GROUPS
    subgroup: str
    base: str  # the emoji with skin-tone modifiers removed

    @property
    def has_skin_tone(self) -> bool:
        return self.base != self.char


def theme_index(theme: str) -> int:
    """'animals', 'Animals & Nature' or '2' → 2. Raises ValueError listing the valid themes."""
    t = theme.strip().lower()
    for i, (short, full) in enumerate(zip(THEMES, GROUPS)):
        if t in (short, full.lower(), str(i)):
            return i
    raise ValueError(f"Unknown theme '{theme}'. Choose one of: {', '.join(THEMES)}.")


def parse_emoji_test(path: Path = EMOJI_TEST_PATH) -> list[EmojiEntry]:
    if not path.exists():
        raise DataError(
            f"{path} is missing. It comes with Debian's unicode-data package: sudo apt-get install unicode-data"
        )
    entries: list[EmojiEntry] = []
    group = subgroup = None
    for line in path.read_text("utf-8").splitlines():
        if line.startswith("# group:"):
            name = line.split(":", 1)[1].strip()
            group = GROUPS.index(name) if name in GROUPS else None
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#") and group is not None:
            codes, rest = line.split(";", 1)
            if "fully-qualified" not in rest.split("#", 1)[0]:
                continue
            cps = [int(c, 16) for c in codes.split()]
            name = rest.split("#", 1)[1].strip().split(" ", 2)[-1]
            base_cps = [c for c in cps if c not in SKIN_TONES]
            entries.append(
                EmojiEntry("".join(map(chr, cps)), name, group, subgroup or "", "".join(map(chr, base_cps)))
            )
    return entries


class EmojiRenderer:
    """Renders one emoji to a 64×64 RGBA image with the colour font (about 1 ms each)."""

    def __init__(self, font_path: Path = FONT_PATH):
        if not font_path.exists():
            raise DataError(
                f"The emoji font {font_path} is missing. Install it with: sudo apt-get install fonts-noto-color-emoji"
            )
        self.font = ImageFont.truetype(str(font_path), _FONT_SIZE)

    def render(self, char: str) -> Image.Image | None:
        """The emoji as a 64×64 RGBA image, or None if the font draws it empty or as several glyphs."""
        canvas = Image.new("RGBA", (_CANVAS, _CANVAS), (0, 0, 0, 0))
        draw = ImageDraw.Draw(canvas)
        if draw.textlength(char, font=self.font) > _CANVAS * 1.2:
            return None  # a sequence the font cannot ligate: drawn as glyphs side by side
        draw.text((_CANVAS // 2, _CANVAS // 2), char, font=self.font, embedded_color=True, anchor="mm")
        if canvas.getbbox() is None:
            return None
        return canvas.resize((SIZE, SIZE), Image.LANCZOS)


def _split_bases(bases_by_group: dict[int, list[str]], heldout: float, seed: int) -> set[str]:
    """Held-out base emoji: the same fraction of every group, drawn with a fixed seed."""
    rng = np.random.default_rng(seed)
    held: set[str] = set()
    for g in sorted(bases_by_group):
        bases = sorted(bases_by_group[g])
        n = max(1, round(len(bases) * heldout))
        held.update(bases[i] for i in rng.permutation(len(bases))[:n])
    return held


def build_emoji_dataset(
    out: Path, *, seed: int = 0, heldout: float = 0.1, skin_tones: bool = False, limit: int | None = None
) -> dict:
    """Render the emoji set and write ``out`` (.npz). Returns the stats that are also stored in it."""
    entries = parse_emoji_test()
    renderer = EmojiRenderer()
    if not skin_tones:
        entries = [e for e in entries if not e.has_skin_tone]
    if limit:
        entries = entries[:limit]
    images, labels, chars, dropped = [], [], [], 0
    for e in entries:
        im = renderer.render(e.char)
        if im is None:
            dropped += 1
            continue
        images.append(np.asarray(im, dtype=np.uint8))
        labels.append(e.group)
        chars.append(e.char)
    if not images:
        raise DataError("No emoji could be rendered; is the fonts-noto-color-emoji package complete?")
    by_char = {e.char: e for e in entries}
    bases_by_group: dict[int, list[str]] = {}
    for c in chars:
        bases_by_group.setdefault(by_char[c].group, [])
        if by_char[c].base not in bases_by_group[by_char[c].group]:
            bases_by_group[by_char[c].group].append(by_char[c].base)
    held = _split_bases(bases_by_group, heldout, seed)
    is_held = np.array([by_char[c].base in held for c in chars])
    source_hash = hashlib.sha256(FONT_PATH.read_bytes() + EMOJI_TEST_PATH.read_bytes()).hexdigest()
    return _write(out, np.stack(images), np.array(labels), chars, is_held, GROUPS, "emoji", source_hash, seed, dropped)


def _write(out, images, labels, chars, is_held, label_names, source, source_hash, seed, dropped) -> dict:
    stats = {
        "source": source,
        "source_sha256": source_hash,
        "seed": seed,
        "n_train": int((~is_held).sum()),
        "n_heldout": int(is_held.sum()),
        "dropped": dropped,
        "label_names": list(label_names),
        "per_label_train": np.bincount(labels[~is_held], minlength=len(label_names)).tolist(),
        "per_label_heldout": np.bincount(labels[is_held], minlength=len(label_names)).tolist(),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        train_images=images[~is_held],
        train_labels=labels[~is_held].astype(np.int64),
        train_chars=np.array([c for c, h in zip(chars, is_held) if not h]),
        heldout_images=images[is_held],
        heldout_labels=labels[is_held].astype(np.int64),
        heldout_chars=np.array([c for c, h in zip(chars, is_held) if h]),
        stats=np.array(json.dumps(stats, ensure_ascii=False)),
    )
    os.replace(tmp, out)
    return stats


def build_folder_dataset(source: Path, out: Path, *, seed: int = 0, heldout: float = 0.1) -> dict:
    """A user's folder of images → the same .npz layout. Sub-folder names become labels (else one label)."""
    source = Path(source)
    if not source.is_dir():
        raise DataError(f"{source} is not a folder. Point --source at a folder of images (PNG, JPEG, WebP…).")
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise DataError(f"{source} holds no image files (looked for {', '.join(sorted(IMAGE_EXTS))}).")
    images, label_of, skipped, h = [], [], [], hashlib.sha256()
    for p in files:
        try:
            im = load_image_rgba(p)
        except DataError:
            skipped.append(p.name)
            continue
        images.append(np.asarray(im, dtype=np.uint8))
        rel = p.relative_to(source)
        label_of.append(rel.parts[0] if len(rel.parts) > 1 else "images")
        h.update(str(rel).encode() + p.read_bytes())
    if len(images) < 2:
        raise DataError(
            f"{source}: only {len(images)} readable image(s) (unreadable: {', '.join(skipped[:5]) or 'none'}). "
            "Muse needs at least a few dozen images to train on."
        )
    names = sorted(set(label_of))
    labels = np.array([names.index(n) for n in label_of])
    rng = np.random.default_rng(seed)
    is_held = np.zeros(len(images), dtype=bool)
    n_held = max(1, round(len(images) * heldout))
    is_held[rng.permutation(len(images))[:n_held]] = True
    chars = [p.name for p in files if p.name not in skipped]
    return _write(out, np.stack(images), labels, chars, is_held, names, str(source), h.hexdigest(), seed, len(skipped))


@dataclass
class ImageSet:
    """A prepared image dataset, as uint8 RGBA arrays and int labels."""

    train_images: np.ndarray  # (N, 64, 64, 4) uint8
    train_labels: np.ndarray  # (N,)
    train_chars: np.ndarray
    heldout_images: np.ndarray
    heldout_labels: np.ndarray
    heldout_chars: np.ndarray
    stats: dict
    path: Path

    @property
    def n_labels(self) -> int:
        return len(self.stats["label_names"])


def load_image_dataset(path: Path) -> ImageSet:
    path = Path(path)
    if not path.exists():
        raise DataError(f"No image dataset at {path}. Build it first with `muse prepare images`.")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{path} is not a readable Muse dataset ({e}); rebuild it with `muse prepare images`.") from e
    stats = json.loads(str(arrays.pop("stats")))
    return ImageSet(**arrays, stats=stats, path=path)


# ---- tensors ------------------------------------------------------------------------------------------------


def to_model(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, 4) straight RGBA → float (N, 4, H, W) premultiplied RGBA in [-1, 1]."""
    x = torch.as_tensor(images).float().div(255.0).permute(0, 3, 1, 2)
    rgb, a = x[:, :3] * x[:, 3:4], x[:, 3:4]
    return torch.cat([rgb, a], 1).mul(2).sub(1).contiguous()


def from_model(x: torch.Tensor) -> np.ndarray:
    """float (N, 4, H, W) premultiplied RGBA in [-1, 1] → uint8 (N, H, W, 4) straight RGBA."""
    x = x.detach().float().cpu().add(1).div(2).clamp(0, 1)
    a = x[:, 3:4]
    rgb = torch.where(a > 1e-3, x[:, :3] / a.clamp_min(1e-3), torch.zeros_like(x[:, :3])).clamp(0, 1)
    out = torch.cat([rgb, a], 1).permute(0, 2, 3, 1).mul(255).round().to(torch.uint8)
    return out.numpy()
