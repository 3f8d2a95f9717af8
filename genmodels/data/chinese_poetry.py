"""The big Chinese corpus: 全唐诗 and 全宋诗 from the npm package ``chinese-poetry`` 2.0.1.

The package (MIT; the poems are public domain) is fetched with npm's own client, ``npm pack``, into a cache
folder and checked: the sha512 of the tarball (npm's ``integrity``, ``sha512-<base64>``) must equal what npm
reports and the value pinned here (npm versions are immutable). The integrity is kept in a sidecar file next
to the tarball, so a cached tarball is re-verified offline on every build.

The tarball is read as a stream (nothing is extracted to disk); only
``package/dist/quantangshi/poet.tang.<n>.json`` and ``poet.song.<n>.json`` are used (not the ``error/``
sub-folder, whose poems are the ones with known defects). Each poem's ``paragraphs`` are cleaned:

- editorial notes go: bracketed notes ``（…）`` ``〔…〕`` ``〖…〗`` ``【…】`` (nested too), an unclosed ``（``
  and everything after it (a note running to the end of the poem), footnote markers ``[一]``; characters
  supplied by the editors keep their text (``[億]`` → ``億``); quotation and title marks are dropped;
- poems with placeholders for missing or unencodable characters (``□ ○ ● ■``, ``{卄/氵史}``, ``⿰木養``)
  are dropped, as are poems with characters outside the CJK blocks the tokenizer knows (rare extension-B
  characters, Latin letters, digits);
- the text is converted to simplified characters (OpenCC's ``t2s``: characters, no regional vocabulary) and
  split into clauses with `poems.zh_clauses`;
- a poem is kept when it has at least two clauses, none over `poems.ZH_MAX_CHARS`, and at least
  `poems.VERSE_SHARE` of them have 5 or 7 characters (regulated verse); duplicates (the same clause
  sequence) are dropped.

Poems are ordered by collection (唐 then 宋), file number and position, so the split (`poems.split_poems`,
by poem) depends on the seed only, not on the order of the tarball's members.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import DataError
from .poems import VERSE_SHARE, split_poems, zh_clauses

PACKAGE = ("chinese-poetry", "2.0.1")
TARBALL = f"{PACKAGE[0]}-{PACKAGE[1]}.tgz"  # the name `npm pack` gives it
SIDECAR_SUFFIX = ".integrity"
# What the npm registry publishes for chinese-poetry@2.0.1 (`npm view chinese-poetry@2.0.1 dist.integrity`).
INTEGRITY = "sha512-KtYARvV7CWNtax0na9+Jn6PlhGgSoid7PWyDzXI4KsCEm2odZcqEQyval5koaLygZnM/EQ3lfJ//25K8p3uHNg=="
SOURCE = f"{PACKAGE[0]} {PACKAGE[1]} (npm): 全唐诗, 全宋诗"
LICENCE = "MIT (package); public domain (poems)"
CONVERTER = ("opencc", "t2s")  # package (OpenCC's own Python binding, Apache-2.0), configuration
MIN_CLAUSES = 2
NPM_TIMEOUT_S = 900
MAX_MEMBER_BYTES = 64 * 1024 * 1024  # the biggest poem file is about 1 MB
_NPM_HINT = (
    "npm is needed to download the chinese-poetry corpus; install it with: sudo apt-get install npm "
    "(or build the small Chinese corpus from Debian's fortunes-zh instead: `muse prepare poems --partial`)"
)

_MEMBER = re.compile(r"package/dist/quantangshi/poet\.(tang|song)\.(\d+)\.json")
_COLLECTIONS = {"tang": 0, "song": 1}
# Bracketed notes, innermost first (removed repeatedly, so nested notes go too); full-width and ASCII.
_NOTE = re.compile(r"（[^（）]*）|\([^()]*\)|〔[^〔〕]*〕|〖[^〖〗]*〗|【[^【】]*】")
_FOOTNOTE = re.compile(r"\[[一二三四五六七八九十百〇0-9]+\]")
_SUPPLIED = re.compile(r"\[([^\[\]]*)\]")
# Missing or unencodable characters: boxes and circles, {…} compositions, ideographic description sequences.
_PLACEHOLDER = re.compile(r"[□○●■◇◆△▲〓{}｛｝\u2ff0-\u2fff]")
_MARKS = re.compile(r"[「」『』《》〈〉“”‘’]")
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff"  # the blocks `poems.zh_clauses` keeps (after NFKC)
_CLAUSE_PUNCT = r"，。？！；、：,.?!;:…—\-"  # what `poems.zh_clauses` splits on (after NFKC)
_FOREIGN = re.compile(rf"[^{_CJK}{_CLAUSE_PUNCT}\s]")
_PIECES = re.compile(rf"[{_CLAUSE_PUNCT}\s]+")

DROP_REASONS = ("empty", "placeholder", "rare_chars", "too_short", "not_regulated", "duplicate")


# --------------------------------------------------------------------------------------------------------
# Fetching and verifying
# --------------------------------------------------------------------------------------------------------


def integrity_of(path: Path) -> str:
    """npm's integrity string of a file: ``sha512-<base64 of the digest>``."""
    h = hashlib.sha512()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha512-" + base64.b64encode(h.digest()).decode("ascii")


def _sidecar(tgz: Path) -> Path:
    return tgz.with_name(tgz.name + SIDECAR_SUFFIX)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, "utf-8")
    tmp.replace(path)


def _check(tgz: Path, actual: str, expected: str, what: str) -> None:
    if actual != expected:
        raise DataError(
            f"{tgz} does not match {what} (sha512 {actual[:24]}… instead of {expected[:24]}…); "
            f"delete it and run `muse prepare poems` again."
        )


def _run_npm(args: list[str], cwd: Path) -> str:
    try:
        done = subprocess.run(
            ["npm", *args], cwd=cwd, capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False
        )
    except FileNotFoundError:
        raise DataError(_NPM_HINT) from None
    except subprocess.TimeoutExpired:
        what = " ".join(args)
        raise DataError(f"`npm {what}` took over {NPM_TIMEOUT_S} s; check the network and retry.") from None
    if done.returncode != 0:
        lines = [l.strip() for l in (done.stderr or done.stdout or "").splitlines() if l.strip()]
        errors = [l for l in lines if l.lower().startswith(("npm err", "npm error")) and "log" not in l.lower()]
        errors = [l for l in errors if " code " not in l] or errors or lines  # the message, not "code E404"
        why = errors[0] if errors else f"exit status {done.returncode}"
        what = " ".join(args)
        raise DataError(f"`npm {what}` failed: {why}; check the network (or npm's proxy settings) and retry.")
    return done.stdout


def _parse_json(out: str, what: str) -> Any:
    start = min((i for i in (out.find("["), out.find("{"), out.find('"')) if i >= 0), default=-1)
    try:
        return json.loads(out[start:] if start >= 0 else out)
    except json.JSONDecodeError:
        raise DataError(f"`{what}` printed no JSON; is npm older than 7? (npm --version)") from None


def fetch_tarball(cache_dir: Path) -> Path:
    """The verified ``chinese-poetry-2.0.1.tgz`` in ``cache_dir``: the cached one, or a fresh ``npm pack``.

    A cached tarball must match its sidecar and the pinned integrity (no network, no npm). A fresh one is
    packed into a temporary folder first, checked against the integrity npm reports and the pinned one, and
    only then moved into place, so an interrupted download never leaves a tarball that looks finished.
    """
    cache_dir = Path(os.path.abspath(cache_dir))  # the folder npm runs in is named absolutely, as every client's
    tgz = cache_dir / TARBALL
    side = _sidecar(tgz)
    if tgz.is_file():
        actual = integrity_of(tgz)
        if side.is_file():
            _check(tgz, actual, side.read_text("utf-8").strip(), f"the integrity recorded in {side.name}")
        _check(tgz, actual, INTEGRITY, f"the published {PACKAGE[0]}@{PACKAGE[1]}")
        if not side.is_file():
            _write_atomic(side, actual + "\n")
        return tgz
    if shutil.which("npm") is None:
        raise DataError(_NPM_HINT)
    cache_dir.mkdir(parents=True, exist_ok=True)
    spec = f"{PACKAGE[0]}@{PACKAGE[1]}"
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".npm-pack-") as tmp:
        tmp_dir = Path(tmp)
        info = _parse_json(_run_npm(["pack", spec, "--json"], tmp_dir), f"npm pack {spec} --json")
        entry = info[0] if isinstance(info, list) and info else info if isinstance(info, dict) else {}
        packed = tmp_dir / str(entry.get("filename") or TARBALL).replace("/", "-").lstrip("@")
        if not packed.is_file():
            raise DataError(f"`npm pack {spec}` left no {packed.name}; run it by hand in {cache_dir} to see why.")
        reported = entry.get("integrity")
        if not isinstance(reported, str) or not reported.startswith("sha512-"):
            view = f"npm view {spec} dist.integrity --json"
            reported = _parse_json(_run_npm(view.split()[1:], tmp_dir), view)
        actual = integrity_of(packed)
        _check(packed, actual, str(reported), "the integrity npm reports")
        _check(packed, actual, INTEGRITY, f"the published {spec}")
        _write_atomic(side, actual + "\n")
        os.replace(packed, tgz)
    return tgz


# --------------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------------


def _member_key(name: str) -> tuple[int, int] | None:
    m = _MEMBER.fullmatch(name)
    return (_COLLECTIONS[m.group(1)], int(m.group(2))) if m else None


def read_poems(tgz: Path, progress: bool = False) -> Iterator[dict]:
    """The raw poems of 全唐诗 and 全宋诗, streamed from the tarball in its member order.

    Each is ``{"title", "author", "paragraphs", "file"}`` (``file`` is the member's path inside the
    tarball); fields of the wrong type come back empty, and the cleaning drops such poems.
    """
    tgz = Path(tgz)
    bar = None
    with open(tgz, "rb") as raw:
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=tgz.stat().st_size, unit="B", unit_scale=True, desc=f"reading {tgz.name}")
        try:
            with tarfile.open(fileobj=raw, mode="r|gz") as tar:
                for member in tar:
                    if bar is not None:
                        bar.update(raw.tell() - bar.n)
                    if not member.isfile() or _member_key(member.name) is None:
                        continue
                    if member.size > MAX_MEMBER_BYTES:
                        raise DataError(
                            f"{member.name} in {tgz} is {member.size >> 20} MB; the tarball is not the expected one."
                        )
                    f = tar.extractfile(member)
                    try:
                        records = json.loads(f.read().decode("utf-8")) if f is not None else []
                    except (UnicodeDecodeError, json.JSONDecodeError) as e:
                        raise DataError(
                            f"{member.name} in {tgz} is not valid JSON ({e}); delete the tarball and retry."
                        ) from None
                    for rec in records if isinstance(records, list) else []:
                        yield _record(rec, member.name)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise DataError(
                f"{tgz} is not a readable .tgz ({e}); delete it and run `muse prepare poems` again."
            ) from None
        finally:
            if bar is not None:
                bar.close()


def _record(rec: Any, name: str) -> dict:
    rec = rec if isinstance(rec, dict) else {}
    paragraphs = rec.get("paragraphs")
    paragraphs = [p for p in paragraphs if isinstance(p, str)] if isinstance(paragraphs, list) else []
    title, author = rec.get("title"), rec.get("author")
    return {
        "title": title if isinstance(title, str) else "",
        "author": author if isinstance(author, str) else "",
        "paragraphs": paragraphs,
        "file": name,
    }


# --------------------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------------------


_OPENCC: Any = None


def _converter() -> Any:
    global _OPENCC
    if _OPENCC is None:
        try:
            import opencc
        except ImportError:
            raise DataError(
                "Converting the chinese-poetry corpus to simplified characters needs OpenCC; "
                "install it with: pip install opencc"
            ) from None
        _OPENCC = opencc.OpenCC(CONVERTER[1])
    return _OPENCC


def converter_version() -> str:
    """``"<package> <version>"`` of the converter, for the dataset card."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{CONVERTER[0]} {version(CONVERTER[0])}"
    except PackageNotFoundError:
        return f"{CONVERTER[0]} (not installed)"


def to_simplified(text: str) -> str:
    """Traditional → simplified characters with OpenCC ``t2s`` (about 20M characters a second).

    It converts characters (雲→云, 裏/裡→里, 髮/發→发, 後→后 while 皇后 stays) and phrases it knows, not
    regional vocabulary (宿霧→宿雾, 水氣→水气). Measured on the real corpus against zhconv (GPL, so not used):
    OpenCC leaves some old variant forms as they are (疎 簷 鴈 慙 劒, where zhconv normalises them) and, like
    every table-driven converter here, turns 乾 (heaven) after 坤 into 干; 沈 and 著 stay.
    """
    return _converter().convert(text)


def _strip_notes(text: str) -> str:
    while True:
        stripped = _NOTE.sub("", text)
        if stripped == text:
            break
        text = stripped
    # An unclosed note runs to the end of the poem; a stray closing bracket is just dropped.
    for opening in ("（", "("):
        if opening in text:
            text = text[: text.index(opening)]
    text = _FOOTNOTE.sub("", text)
    text = _SUPPLIED.sub(r"\1", text)
    return _MARKS.sub("", text.replace("）", "").replace(")", ""))


def _clean(record: dict) -> tuple[list[str] | None, str]:
    """(clauses, "") for a kept poem, or (None, reason) with reason in `DROP_REASONS` (not "duplicate")."""
    text = "\n".join(p for p in record.get("paragraphs") or () if isinstance(p, str))
    text = _strip_notes(text)
    if not text.strip():
        return None, "empty"
    if _PLACEHOLDER.search(text):
        return None, "placeholder"
    text = unicodedata.normalize("NFKC", text)  # compatibility ideographs → unified, full-width → ASCII
    if _FOREIGN.search(text):
        return None, "rare_chars"
    text = to_simplified(text)
    clauses: list[str] = []
    pieces = 0
    for line in text.split("\n"):
        clauses.extend(zh_clauses(line))
        pieces += sum(1 for p in _PIECES.split(line) if p)
    if len(clauses) < pieces:  # a clause over ZH_MAX_CHARS (prose), or one zh_clauses refused
        return None, "not_regulated"
    if not clauses:
        return None, "empty"
    if len(clauses) < MIN_CLAUSES:
        return None, "too_short"
    if sum(len(c) in (5, 7) for c in clauses) / len(clauses) < VERSE_SHARE:
        return None, "not_regulated"
    return clauses, ""


def poem_clauses(record: dict) -> list[str] | None:
    """The simplified clauses of one poem, or None when the poem is dropped (see the module docstring)."""
    return _clean(record)[0]


# --------------------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------------------


def build(cache_dir: Path, seed: int = 0, progress: bool = True) -> tuple[dict[str, list[list[str]]], dict]:
    """Fetch (or re-verify) the tarball, clean every poem and split by poem with ``seed``.

    Returns ``({"train", "dev", "heldout"} -> poems -> clauses, card)``.
    """
    tgz = fetch_tarball(Path(cache_dir))
    _converter()  # a missing converter fails before the long read, not after it
    dropped: Counter[str] = Counter({r: 0 for r in DROP_REASONS})
    kept: list[tuple[tuple[int, int, int], str]] = []
    poems_in = 0
    last_file, index = None, 0
    for rec in read_poems(tgz, progress=progress):
        poems_in += 1
        if rec["file"] != last_file:
            last_file, index = rec["file"], 0
        clauses, reason = _clean(rec)
        key = (*(_member_key(rec["file"]) or (9, 0)), index)
        index += 1
        if clauses is None:
            dropped[reason] += 1
        else:
            kept.append((key, "\n".join(clauses)))
    kept.sort()
    seen: set[str] = set()
    poems: list[list[str]] = []
    for _, joined in kept:
        if joined in seen:
            dropped["duplicate"] += 1
            continue
        seen.add(joined)
        poems.append(joined.split("\n"))
    del kept, seen
    idx = split_poems(len(poems), seed)
    splits = {name: [poems[i] for i in ids] for name, ids in idx.items()}
    lengths = Counter(len(c) for p in poems for c in p)
    n_clauses = sum(lengths.values())
    card = {
        "source": SOURCE,
        "tarball": tgz.name,
        "integrity": integrity_of(tgz),
        "converter": converter_version(),
        "poems_in": poems_in,
        "poems_kept": len(poems),
        "dropped": dict(dropped),
        "clauses": n_clauses,
        "share_5": round(lengths[5] / n_clauses, 4) if n_clauses else 0.0,
        "share_7": round(lengths[7] / n_clauses, 4) if n_clauses else 0.0,
        "licence": LICENCE,
        "seed": seed,
    }
    return splits, card
