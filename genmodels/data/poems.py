"""The poem corpora: English verse lines, Chinese verse clauses, or a user's own text file.

Built-in sources (Debian packages, read from ``/usr/share/games/fortunes``):

- ``en``: ``songs-poems`` and ``love`` from ``fortunes``. Entries are separated by ``%`` lines; the
  ``-- Author`` attribution (and anything after it in the entry) is dropped, as are blank lines, very long
  lines and lines that are mostly not letters (ASCII art, code, tables).
- ``zh``: ``tang300`` and ``song100`` from ``fortunes-zh``, plus the regulated verse in its ``chinese`` file
  (entries of at least two clauses, 90% or more of them of 5 or 7 characters; entries that share a clause
  with ``tang300``/``song100`` are dropped, so no poem can straddle the split twice). ANSI colour escapes,
  ``-- author`` attributions, the ``《title》`` / ``题目:`` line, the ``作者：`` line and the ``其一``
  sub-headings are dropped; every verse line is split into clauses on Chinese and ASCII punctuation
  (，。？！；、：…), and each clause is one training line.

A user's own corpus is a UTF-8 text file with poems separated by blank lines or ``%`` lines; every text
line is one training line (for ``zh`` each line is split into clauses as above, because the model works
on clauses).

The split is by POEM with a fixed seed, so the lines of one poem never straddle train / dev / held-out.
The dataset is written as JSON: the poems (lists of lines) of each split, counts, and the SHA-256 of the
source bytes.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import DataError

FORTUNES_DIR = Path("/usr/share/games/fortunes")
BUILTIN = {
    "en": (("songs-poems", "love"), "fortunes"),
    "zh": (("tang300", "song100", "chinese"), "fortunes-zh"),
}
# Files whose entries are mixed (proverbs, prose, code, verse): only regulated verse is kept from them.
VERSE_ONLY = {"chinese"}
VERSE_SHARE = 0.9  # of an entry's clauses with 5 or 7 characters
LANGS = tuple(BUILTIN)
FORMAT_VERSION = 1

# Fractions of poems in each split; the rest goes to train.
DEV_FRACTION = 0.08
HELDOUT_FRACTION = 0.10

EN_MAX_CHARS = 90  # longer "lines" are prose or tables, not verse
ZH_MAX_CHARS = 12  # longer clauses are prose notes
MAX_SOURCE_BYTES = 50 * 1024 * 1024

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ZH_SPLIT = re.compile(r"[，。？！；、：,.?!;:…「」『』“”‘’\"（）()《》〈〉—\-\s]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_ATTRIBUTION = re.compile(r"^\s*--\s*\S")


# --------------------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------------------


def _split_entries(text: str, blank_separates: bool) -> list[list[str]]:
    """Split text into entries (lists of raw lines) on ``%`` lines (and blank lines when asked)."""
    entries: list[list[str]] = [[]]
    for raw in text.splitlines():
        if raw.strip() == "%" or (blank_separates and not raw.strip()):
            if entries[-1]:
                entries.append([])
            continue
        entries[-1].append(raw)
    return [e for e in entries if e]


def clean_en_line(line: str) -> str | None:
    """One English verse line, or None when it is junk."""
    line = unicodedata.normalize("NFKC", line).replace("\t", " ").strip()
    line = re.sub(r"\s+", " ", line)
    if len(line) < 2 or len(line) > EN_MAX_CHARS:
        return None
    letters = sum(c.isalpha() for c in line)
    if letters < 2 or (letters + line.count(" ")) / len(line) < 0.75:
        return None
    return line


def _en_entry_lines(entry: list[str], drop_attribution: bool) -> list[str]:
    out = []
    for raw in entry:
        if drop_attribution and _ATTRIBUTION.match(raw):
            break  # the attribution and whatever follows it (book titles, dates) are not verse
        line = clean_en_line(raw)
        if line is not None:
            out.append(line)
    return out


def zh_clauses(line: str) -> list[str]:
    """Split one Chinese verse line into clauses of CJK characters (clauses with other characters dropped)."""
    line = _ANSI.sub("", unicodedata.normalize("NFKC", line)).strip()
    # NFKC maps full-width punctuation to ASCII; the split set covers both forms.
    out = []
    for clause in _ZH_SPLIT.split(line):
        if not clause or len(clause) > ZH_MAX_CHARS:
            continue
        if all(_CJK.match(c) for c in clause):
            out.append(clause)
    return out


def _zh_entry_lines(entry: list[str]) -> list[str]:
    out = []
    for raw in entry:
        line = _ANSI.sub("", raw).strip()
        if not line or line.startswith(("《", "题目", "作者")) or _ATTRIBUTION.match(line):
            continue
        if not re.search(r"[，。？！；、：,.?!;:]", line) and len(line) <= 4:
            continue  # sub-headings such as 其一 / 其二
        out.extend(zh_clauses(line))
    return out


# --------------------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------------------


def _read_builtin(lang: str) -> tuple[list[list[str]], list[str], str]:
    names, package = BUILTIN[lang]
    h = hashlib.sha256()
    poems: list[list[str]] = []
    paths = []
    for name in names:
        p = FORTUNES_DIR / name
        if not p.is_file():
            raise DataError(
                f"The {lang} poem corpus needs {p}, which comes with the Debian package '{package}'; "
                f"install it with: sudo apt-get install {package}"
            )
        data = p.read_bytes()
        h.update(data)
        text = data.decode("utf-8", errors="replace")
        paths.append(str(p))
        seen = {line for poem in poems for line in poem}
        for entry in _split_entries(text, blank_separates=False):
            lines = _en_entry_lines(entry, True) if lang == "en" else _zh_entry_lines(entry)
            if name in VERSE_ONLY and not _is_new_regulated_verse(lines, seen):
                continue
            if lines:
                poems.append(lines)
    return poems, paths, h.hexdigest()


def _is_new_regulated_verse(clauses: list[str], seen: set[str]) -> bool:
    """Two or more clauses, nearly all of 5 or 7 characters, none already in the corpus."""
    if len(clauses) < 2 or any(c in seen for c in clauses):
        return False
    return sum(len(c) in (5, 7) for c in clauses) / len(clauses) >= VERSE_SHARE


def _read_source(lang: str, source: Path) -> tuple[list[list[str]], list[str], str]:
    source = Path(source)
    if not source.exists():
        raise DataError(f"The poem file {source} does not exist; check the path.")
    if not source.is_file():
        raise DataError(f"{source} is not a file; give a UTF-8 text file of poems separated by blank lines.")
    if source.stat().st_size > MAX_SOURCE_BYTES:
        raise DataError(f"{source} is over {MAX_SOURCE_BYTES >> 20} MB; a poem corpus should be plain text.")
    data = source.read_bytes()
    if not data.strip():
        raise DataError(f"{source} is empty; put poems in it, separated by blank lines.")
    if b"\x00" in data[:65536]:
        raise DataError(f"{source} looks like a binary file, not text; export your poems as UTF-8 plain text.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{source} is not valid UTF-8 (byte {e.start}); re-save it as UTF-8 plain text."
        ) from None
    poems = []
    for entry in _split_entries(text, blank_separates=True):
        if lang == "en":
            lines = _en_entry_lines(entry, drop_attribution=True)
        else:
            lines = [c for raw in entry for c in zh_clauses(raw)]
        if lines:
            poems.append(lines)
    if not poems:
        what = "English verse lines" if lang == "en" else "Chinese clauses (CJK characters)"
        raise DataError(f"{source} has no usable {what}; check that it holds poems in that language.")
    return poems, [str(source)], hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------------------


def split_poems(n: int, seed: int) -> dict[str, list[int]]:
    """Poem indices of each split: a seeded shuffle, then held-out and dev taken from the front."""
    if n < 3:
        raise DataError(f"Only {n} poem(s) found; at least 3 are needed (train, dev and held-out).")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_held = max(1, round(n * HELDOUT_FRACTION))
    n_dev = max(1, round(n * DEV_FRACTION))
    return {
        "heldout": sorted(order[:n_held]),
        "dev": sorted(order[n_held : n_held + n_dev]),
        "train": sorted(order[n_held + n_dev :]),
    }


def build_poem_dataset(lang: str, source: Path | None, out_dir: Path, seed: int = 0) -> Path:
    """Build ``out_dir/poems-{lang}.json`` from the built-in corpus (``source=None``) or a user's file."""
    if lang not in LANGS:
        raise DataError(f"Unknown poem language '{lang}'; choose one of: {', '.join(LANGS)}.")
    poems, paths, sha = _read_builtin(lang) if source is None else _read_source(lang, Path(source))
    idx = split_poems(len(poems), seed)
    splits = {name: [poems[i] for i in ids] for name, ids in idx.items()}
    return write_poem_dataset(lang, splits, out_dir, source=paths, builtin=source is None, sha256=sha, seed=seed)


def write_poem_dataset(lang: str, splits: dict[str, list[list[str]]], out_dir: Path, *, source: list[str],
                       builtin: bool, sha256: str, seed: int, card: dict | None = None) -> Path:
    """Write ``out_dir/poems-{lang}.json`` (atomically): the poems of each split, their counts, where they came
    from and the checksum of the source. ``card`` (a corpus's own description: package, licence, filters and
    what they dropped) is kept in the file and also written beside it as ``poems-{lang}.card.json``, small
    enough to read."""
    stats = {
        name: {"poems": len(ps), "lines": sum(len(p) for p in ps), "chars": sum(len(l) for p in ps for l in p)}
        for name, ps in splits.items()
    }
    doc = {
        "format": FORMAT_VERSION,
        "kind": "poems",
        "lang": lang,
        "source": source,
        "builtin": builtin,
        "sha256": sha256,
        "seed": seed,
        "stats": stats,
        "card": card or {},
        "splits": splits,
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"poems-{lang}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=None if card else 1) + "\n", "utf-8")
    tmp.replace(out)
    summary = {k: v for k, v in doc.items() if k != "splits"}
    (out_dir / f"poems-{lang}.card.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1) + "\n",
                                                      "utf-8")
    return out


@dataclass
class PoemDataset:
    lang: str
    sha256: str
    seed: int
    poems: dict[str, list[list[str]]]
    stats: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def lines(self, split: str, limit: int = 0) -> list[str]:
        """The lines of ``split`` in corpus order; ``limit`` > 0 keeps a fixed sample of at most that many (the
        same for every caller: the big corpora's dev and held-out splits have 180k-240k lines, far more than an
        evaluation or a fine-tune's replay needs)."""
        lines = [line for poem in self.poems[split] for line in poem]
        if 0 < limit < len(lines):
            keep = sorted(random.Random(f"{self.sha256}:{split}").sample(range(len(lines)), limit))
            lines = [lines[i] for i in keep]
        return lines


def load_poem_dataset(path: Path) -> PoemDataset:
    """Read a dataset written by `build_poem_dataset`, with a `DataError` that says how to rebuild it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"No poem dataset at {path}; build it first with `muse prepare poems`.")
    try:
        doc = json.loads(path.read_text("utf-8"))
        if doc.get("kind") != "poems":
            raise KeyError("kind")
        splits = {k: doc["splits"][k] for k in ("train", "dev", "heldout")}
        return PoemDataset(doc["lang"], doc["sha256"], int(doc["seed"]), splits, doc.get("stats", {}), path)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise DataError(f"{path} is not a valid poem dataset ({e}); rebuild it with `muse prepare poems`.") from None
