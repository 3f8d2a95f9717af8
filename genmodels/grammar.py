"""A grammar-aware check of English lines: Link Grammar's null links per word.

Link Grammar (Sleator & Temperley 1991; CMU's parser, kept by the OpenCog project; Debian ``link-grammar``, the
Python binding ``python3-link-grammar``) parses a sentence by linking every word to others through the connectors
its dictionary entry allows, with no links crossing. A word that no parse can link is a *null link*; the parser
finds the parse with the fewest. The share of a line's words left unlinked is a grammar-aware check that a
trigram model cannot be: "and the", "of my" are frequent pairs, but "To see me for a cup, and foot" must still
link "foot" to something, and a line of real words in a shuffled order leaves many unlinked.

    check = grammar_check()            # the one checker of this process (loading the dictionary takes ~0.1 s)
    check.parse("The moon is rising on the sea.")    # Parse(nulls=0, words=8)
    check.null_rate(lines)             # total nulls / total words over the lines (the yardstick)

What it measures, and what it misses:
- a line is parsed on its own, as verse is read line by line, so a line that is the first half of a sentence
  (real verse has many) can leave words unlinked; real held-out lines score about 0.17 null links per word and
  the same words shuffled about 0.25 (`genmodels.eval_text` reports both beside the samples);
- the English dictionary is lenient: it links many lines that a reader finds odd ("To see me for a cup, and
  foot." parses fully), it knows nothing of meaning, and archaic forms (o'er, thro', 'd) often go unlinked;
- a line's soft end (a trailing comma, semicolon, colon or dash: the sentence goes on in the next line) is
  dropped before parsing, for every population alike; the rest of the line is parsed as written.

The parser is a required dependency (scripts/setup.sh installs it from Debian and links the binding into the
venv); `GrammarUnavailable` says so clearly when it cannot be loaded. Parses are deterministic.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from dataclasses import dataclass
from typing import Iterable, Sequence

log = logging.getLogger(__name__)

# The disjunct cost limit of the strict parse. The dictionary's own limit (2.7) lets a word take rare uses (a noun
# as a verb, "and" joining anything), which links many lines a reader finds broken; at 1.5, 81 % of 16 lines read as
# grammatical parsed fully against 42 % of 26 that did not, while the usual limit parsed 100 % and 88 % of them
# (lines judged by hand, 2026-12-07). Real held-out lines: 0.18 nulls per word strict (0.12 usual), shuffled 0.34.
STRICT_COST = 1.5
MAX_PARSE_SECONDS = 1  # a parse that runs longer returns what it has (the parser's timer; lines here take ~2 ms)
_SOFT_END = re.compile(r"[\s,;:\-—–]+$")
INSTALL_HINT = ("Muse's grammar check needs Link Grammar's Python binding: on Debian, run scripts/setup.sh "
                "(it installs python3-link-grammar and links it into .venv), or `apt-get install "
                "python3-link-grammar` and link /usr/lib/python3/dist-packages/linkgrammar into your venv.")


class GrammarUnavailable(RuntimeError):
    """The Link Grammar parser or its English dictionary could not be loaded."""


@dataclass(frozen=True)
class Parse:
    """One line's parse: ``nulls`` words left unlinked out of ``words`` (the parser's words: punctuation marks
    and split-off suffixes count, the walls do not) with the dictionary's usual cost limit, and ``strict_nulls``
    with only its plainest uses of words allowed (`STRICT_COST`), and how many of its words the dictionary did not
    know (``unknown``), the usual parse's ``cost``, and the ``surface`` faults the parser lets through; the
    ranker uses them all (`faults`)."""

    nulls: int
    words: int
    strict_nulls: int = 0
    unknown: int = 0  # words the dictionary does not know and the parse guessed a part of speech for ("miht", "sone")
    cost: float = 0.0  # the usual parse's disjunct cost: how far it had to stretch the dictionary's uses of words
    surface: int = 0  # faults the parser lets through (`surface_faults`): "a old", "own own", "the child. the venus"

    @property
    def faults(self) -> int:
        """What the ranker counts against a line: null links (usual and strict), unknown words, surface faults."""
        return self.nulls + self.strict_nulls + self.unknown + self.surface

    @property
    def rate(self) -> float:
        """Null links per word; 1.0 for a line with no words (never preferred)."""
        return self.nulls / self.words if self.words else 1.0


_WORDS = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*|[.!?]")
_VOWEL_SOUND = re.compile(r"^(?:[aeio]|u(?!ni|se|su|ti|ro|ra|re|ku|ni)|hour|honou?r|heir|honest)", re.I)
_CONSONANT_SOUND = re.compile(r"^(?:[^aeiou]|uni|use|usu|uti|uro|ura|ure|eu|ewe|one|once)", re.I)


def surface_faults(line: str) -> int:
    """Faults of a line that the parser's dictionary lets through: "a" before a vowel sound or "an" before a
    consonant ("a old life"), a word said twice in a row ("his own own", "old old"), and a sentence ended
    inside the line with more words after it in lower case ("The child. the venus")."""
    toks = _WORDS.findall(line)
    n = 0
    for a, b in zip(toks, toks[1:]):
        al, bl = a.lower(), b.lower()
        if al == "a" and b.isalpha() and _VOWEL_SOUND.match(bl) and not _CONSONANT_SOUND.match(bl):
            n += 1
        elif al == "an" and b.isalpha() and _CONSONANT_SOUND.match(bl) and not _VOWEL_SOUND.match(bl):
            n += 1
        elif al == bl and a.isalpha() and al not in ("that", "had", "very", "far", "on", "o", "no", "round", "ever"):
            n += 1
        elif a in ".!?" and b.isalpha() and b[0].islower():
            n += 1
    return n


def prepared(line: str) -> str:
    """The line as the parser reads it: whitespace collapsed, a soft end (, ; : -) dropped."""
    return _SOFT_END.sub("", " ".join(line.split()))


class LinkGrammar:
    """Link Grammar's English dictionary and the options every parse here uses: the fewest nulls, one linkage,
    no spelling guesses, a time limit; once with the dictionary's cost limit and once strict (`STRICT_COST`).
    Thread-safe (one parse at a time)."""

    def __init__(self, lang: str = "en", max_parse_seconds: int = MAX_PARSE_SECONDS):
        try:
            import linkgrammar as lg
        except Exception as e:  # ImportError, or the binding's shared library failing to load
            raise GrammarUnavailable(f"{INSTALL_HINT} ({type(e).__name__}: {e})") from e
        self._lg = lg
        lg.LG_Error.set_handler(_quiet)  # the library's notes (locale, dictionary) go to logging, not stderr
        try:
            self.options = lg.ParseOptions(verbosity=0, linkage_limit=1, spell_guess=0, islands_ok=False,
                                           repeatable_rand=True, max_parse_time=int(max_parse_seconds))
            self.strict = lg.ParseOptions(verbosity=0, linkage_limit=1, spell_guess=0, islands_ok=False,
                                          repeatable_rand=True, max_parse_time=int(max_parse_seconds),
                                          disjunct_cost=STRICT_COST)
            self.dictionary = lg.Dictionary(lang)
        except Exception as e:
            raise GrammarUnavailable(f"Link Grammar's {lang!r} dictionary could not be loaded: {e}. "
                                     f"{INSTALL_HINT}") from e
        self.lang = lang
        self._lock = threading.Lock()

    def parse(self, line: str) -> Parse:
        text = prepared(line)
        if not text:
            return Parse(0, 0, 0, 0, 0.0, 0)
        with self._lock:
            nulls, words, unknown, cost = self._nulls(text, self.options)
            strict = nulls if nulls >= words else max(nulls, self._nulls(text, self.strict)[0])
        return Parse(nulls, words, strict, unknown, cost, surface_faults(text))

    def _nulls(self, text: str, options) -> tuple[int, int, int, float]:
        """(fewest null links, words, words unknown to the dictionary, disjunct cost) of one prepared line under
        ``options``."""
        n = len(text.split())
        options.max_null_count = 2 * n + 4  # never give up before every word is null
        sentence = self._lg.Sentence(text, self.dictionary, options)
        try:
            linkage = next(iter(sentence.parse()), None)
        except self._lg.LG_Error as e:  # e.g. the timer: count the line as unlinked
            log.debug("link-grammar failed on %r: %s", text, e)
            linkage = None
        if linkage is None:
            return n, n, 0, 0.0
        words = linkage.num_of_words() - 2  # LEFT-WALL and RIGHT-WALL
        unknown = sum("[?]" in w for w in linkage.words())
        return min(int(sentence.null_count()), words), words, unknown, round(float(linkage.disjunct_cost()), 3)

    def parses(self, lines: Iterable[str]) -> list[Parse]:
        return [self.parse(line) for line in lines]

    def null_rate(self, lines: Iterable[str]) -> float:
        """Total null links / total words over ``lines`` (the yardstick's number; lower reads better)."""
        ps = self.parses(lines)
        return sum(p.nulls for p in ps) / max(1, sum(p.words for p in ps))

    def full_rate(self, lines: Iterable[str]) -> float:
        """The share of non-empty lines that parse with no null link."""
        ps = [p for p in self.parses(lines) if p.words]
        return sum(p.nulls == 0 for p in ps) / max(1, len(ps))


def _quiet(errinfo, data) -> None:
    log.debug("link-grammar: %s", getattr(errinfo, "text", errinfo))


@functools.lru_cache(maxsize=1)
def grammar_check() -> LinkGrammar:
    """The process's English checker, loaded on first use; `GrammarUnavailable` when the parser is missing."""
    return LinkGrammar("en")


_UNIT = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*|[^\sA-Za-z]")


def shuffled(line: str, rng) -> str:
    """The line's words and punctuation marks in a random order (``rng``: a `random.Random`): every word real,
    no syntax; the check's lower reference."""
    toks = _UNIT.findall(line)
    rng.shuffle(toks)
    return " ".join(toks)


def calibration(check: LinkGrammar, heldout: Sequence[str], rng) -> dict[str, float]:
    """Null links per word (and lines parsed fully) of real held-out lines and of the same lines shuffled."""
    mixed = [shuffled(line, rng) for line in heldout]
    return {"heldout": check.null_rate(heldout), "shuffled": check.null_rate(mixed),
            "heldout_full": check.full_rate(heldout), "shuffled_full": check.full_rate(mixed)}


def gap_share(samples: float, heldout: float, shuffled_: float) -> float:
    """Where the samples' null rate lies between real verse (0) and shuffled words (1)."""
    return (samples - heldout) / (shuffled_ - heldout) if shuffled_ != heldout else float("nan")


GAP_TARGET = 0.25  # samples within a quarter of the real-to-shuffled gap, measured from real verse

__all__ = ["GAP_TARGET", "GrammarUnavailable", "LinkGrammar", "Parse", "calibration", "gap_share", "grammar_check",
           "prepared", "shuffled", "surface_faults"]
