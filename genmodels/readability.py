"""How poems read, measured with yardsticks that are not the models that write them.

- **Fluency**: the SLOR of a line (syntactic log-odds ratio; Pauls & Klein 2012, who found it the measure of
  sentence acceptability that best follows people's judgements among many in Lau, Clark & Lappin 2017):

      SLOR(s) = (log P_3(s) - log P_1(s)) / |s|

  where P_3 is an interpolated Kneser-Ney trigram model (Kneser & Ney 1995; the interpolated form of Chen &
  Goodman 1999, one discount D = 0.75) and P_1 the unigram model, both counted on a fixed sample of the training
  split. SLOR credits word order and discounts word frequency: a line of common words in no order scores near 0
  however probable its words, which raw perplexity does not (a line of "the" and "love" reads as fluent to it).
  Its units are its own, not the poem models' tokens: lower-cased words and punctuation marks (en), characters
  (zh); units seen once in the sample read as ``<unk>``, and the end of the line counts as a token. It scores
  three populations side by side: sampled lines, real held-out lines, and the same held-out lines with their
  units shuffled (every word real, no syntax). Perplexities are reported too.
- **Coherence**: whether a poem's lines share a theme and images, by latent semantic analysis (Foltz, Kintsch &
  Landauer 1998, "The measurement of textual coherence with latent semantic analysis"): word vectors from a
  truncated SVD of the tf-idf content-word-by-poem matrix of training poems, a line's vector the sum of its
  words' (to unit length, centred on the mean line), and a poem's score the mean cosine between its lines.
  Real held-out poems and poems assembled from lines of different random poems bracket the scale.
- **Copies and repeats**: the share of sampled lines found verbatim in the training split (after the
  yardstick's normalisation), and for zh the share of clauses with one character three or more times.
- **Grammar** (en): Link Grammar's null links per word (`genmodels.grammar`), on the sampled lines, the real
  held-out lines and the same lines shuffled, with the share of lines that parse fully, the same under the strict
  parse, and where the samples lie between real (0) and shuffled (1) (``gap_share``; target ≤ 0.25). What each
  misses: the trigram SLOR sees three words at a time, so common pairs ("and the", "of my") read as fluent
  whatever the line does; the parser sees the whole line's structure but not its sense, its dictionary links
  many odd lines, and it is the same check that Muse's grammar-aware ranking uses (`PoemModel.rank_scores`), so
  on ranked samples it is no longer an independent judge: read the lines too.

Everything here is count-based and deterministic given its seeds; `poem_readability` runs a `PoemModel` the way
`/poem` does (its default temperature and nucleus) and reports the lot.
"""

from __future__ import annotations

import math
import random
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import torch

from .data.poems import PoemDataset

KN_DISCOUNT = 0.75
# training lines the trigram model is fitted on (LSA: whole poems holding about as many lines)
FIT_LINES = {"en": 250_000, "zh": 400_000}
STOP_UNITS = {"en": 100, "zh": 20}  # the most frequent content units, left out of coherence (no theme in them)
_EN_UNIT = re.compile(r"[a-z]+(?:'[a-z]+)*|[^\sa-z]")
_ZH_CLAUSE = re.compile(r"[，。、；：？！,.;:?!\s]+")
BOS, EOS, UNK = "<s>", "</s>", "<unk>"


def units(line: str, lang: str) -> list[str]:
    """The yardstick's units of a line: lower-cased words and single punctuation marks (en), characters (zh)."""
    line = unicodedata.normalize("NFKC", line).lower()
    if lang == "zh":
        return [c for c in line if not c.isspace() and unicodedata.category(c)[0] not in "PZ"]
    return _EN_UNIT.findall(line.replace("’", "'"))


def content_units(line: str, lang: str) -> list[str]:
    """Units that can carry a theme: words (en) or characters (zh); punctuation is never one."""
    return [u for u in units(line, lang) if u.isalpha()]


def clauses(line: str) -> list[str]:
    """A printed zh line "a，b。" as its clauses ["a", "b"]; an en line as itself."""
    return [c for c in _ZH_CLAUSE.split(line) if c]


@dataclass
class KneserNey:
    """An interpolated Kneser-Ney trigram model over string units (the fluency yardstick).

    P3(w | u v) = max(c(uvw) - D, 0) / c(uv.) + D N(uv.) / c(uv.) · P2(w | v)        (raw counts)
    P2(w | v)   = max(N(.vw) - D, 0) / N(.v.) + D N(v.) / N(.v.) · P1(w)               (continuation counts)
    P1(w)       = max(N(.w) - D, 0) / N(..) + D |{w: N(.w) > 0}| / N(..) · 1 / V

    N(.vw) counts the distinct u before "v w", N(v.) the distinct w after v, N(.w) the distinct v before w; a
    context never seen falls back to the lower order whole. Every P sums to 1 over the vocabulary and "</s>".
    """

    discount: float = KN_DISCOUNT
    vocab: set[str] = field(default_factory=set)
    c3: Counter = field(default_factory=Counter)
    c3_ctx: Counter = field(default_factory=Counter)
    n3_ctx: Counter = field(default_factory=Counter)
    n2: Counter = field(default_factory=Counter)
    n2_ctx: Counter = field(default_factory=Counter)
    n2_types: Counter = field(default_factory=Counter)
    n1: Counter = field(default_factory=Counter)
    n1_total: int = 0
    unigram: Counter = field(default_factory=Counter)  # raw counts of each unit (and "</s>"), for P_1
    unigram_total: int = 0

    @classmethod
    def fit(cls, lines: Iterable[Sequence[str]], min_count: int = 2) -> "KneserNey":
        lines = [list(l) for l in lines]
        counts = Counter(u for l in lines for u in l)
        lm = cls(vocab={u for u, c in counts.items() if c >= min_count} | {UNK, EOS})
        for line in lines:
            seq = [BOS, BOS, *lm._known(line), EOS]
            for u, v, w in zip(seq, seq[1:], seq[2:]):
                lm.c3[u, v, w] += 1
            lm.unigram.update(seq[2:])
        lm.unigram_total = sum(lm.unigram.values())
        for (u, v, w), c in lm.c3.items():
            lm.c3_ctx[u, v] += c
            lm.n3_ctx[u, v] += 1
            lm.n2[v, w] += 1  # one more distinct u before "v w"
        for (v, w) in lm.n2:
            lm.n2_ctx[v] += lm.n2[v, w]
            lm.n2_types[v] += 1
            lm.n1[w] += 1
        lm.n1_total = sum(lm.n1.values())
        return lm

    def _known(self, line: Sequence[str]) -> list[str]:
        return [u if u in self.vocab else UNK for u in line]

    def _p1(self, w: str) -> float:
        d, total = self.discount, self.n1_total
        return max(self.n1[w] - d, 0) / total + d * len(self.n1) / total / len(self.vocab)

    def _p2(self, v: str, w: str) -> float:
        ctx = self.n2_ctx[v]
        if not ctx:
            return self._p1(w)
        return max(self.n2[v, w] - self.discount, 0) / ctx + self.discount * self.n2_types[v] / ctx * self._p1(w)

    def prob(self, u: str, v: str, w: str) -> float:
        """P(w | u v) for known units (map others to ``<unk>`` first)."""
        ctx = self.c3_ctx[u, v]
        if not ctx:
            return self._p2(v, w)
        d = self.discount
        return max(self.c3[u, v, w] - d, 0) / ctx + d * self.n3_ctx[u, v] / ctx * self._p2(v, w)

    def line_logprob(self, line: Sequence[str]) -> tuple[float, int]:
        """(natural log-probability of the line and its end, number of tokens scored)."""
        seq = [BOS, BOS, *self._known(line), EOS]
        return sum(math.log(self.prob(u, v, w)) for u, v, w in zip(seq, seq[1:], seq[2:])), len(seq) - 2

    def slor(self, line: Sequence[str]) -> float:
        """(log P_3(line) - log P_1(line)) / tokens, "</s>" included; P_1 the unigram relative frequencies."""
        lp, n = self.line_logprob(line)
        uni = sum(math.log(max(self.unigram[w], 1) / self.unigram_total) for w in [*self._known(line), EOS])
        return (lp - uni) / n

    def perplexity(self, lines: Iterable[Sequence[str]]) -> float:
        """exp(-(total log-probability) / (total tokens)) over the lines; "</s>" counts as a token."""
        lp = n = 0
        for line in lines:
            a, b = self.line_logprob(line)
            lp, n = lp + a, n + b
        return math.exp(-lp / max(1, n))


class Coherence:
    """LSA word vectors (Foltz et al. 1998) from training poems, and the mean cosine between a poem's lines.

    A is the (V, N) matrix of content words by poems, A[w, p] = log(1 + tf) · log(N / df); the rank-``dim``
    truncated SVD A ~= U S V^T gives each word the vector U[w] S. The most frequent ``stop`` words and words in
    fewer than ``min_df`` poems have none. A line's vector is the sum of its words', scaled to unit length, less
    the mean of those unit vectors over the poems' lines: every sum of many words leans the same common way
    (raw cosines read 0.74 for real zh poems and for lines mixed from different ones, 0.094 against 0.040 once
    centred), and the centring takes that shared part out.
    """

    def __init__(self, poems: Sequence[Sequence[str]], lang: str, stop: int, dim: int = 100, min_df: int = 5,
                 seed: int = 0, centre_poems: int = 5000):
        self.lang = lang
        docs = [Counter(u for line in p for u in content_units(line, lang)) for p in poems]
        df = Counter(u for d in docs for u in d)
        common = {u for u, _ in df.most_common(stop)}
        words = sorted(u for u, c in df.items() if c >= min_df and u not in common)
        self.index = {u: i for i, u in enumerate(words)}
        rows, cols, vals = [], [], []
        n = len(docs)
        for j, d in enumerate(docs):
            for u, tf in d.items():
                if (i := self.index.get(u)) is not None:
                    rows.append(i)
                    cols.append(j)
                    vals.append(math.log1p(tf) * math.log(n / df[u]))
        q = min(dim, len(words), n)
        if q == 0:  # a corpus too small to have any word in min_df poems: no line has a vector
            self.vectors = torch.zeros(len(words), 0)
            self.centre = torch.zeros(0)
            return
        idx = torch.tensor([rows, cols], dtype=torch.long).reshape(2, -1)
        a = torch.sparse_coo_tensor(idx, torch.tensor(vals, dtype=torch.float32), (len(words), n),
                                    check_invariants=True)  # (V, N)
        torch.manual_seed(seed)
        u, sv, _ = torch.svd_lowrank(a.coalesce(), q=q)  # (V, q), (q,)
        self.vectors = u * sv  # (V, q)
        lines = [line for p in poems[:centre_poems] for line in p]
        units_ = [v for line in lines if (v := self._unit(line)) is not None]
        self.centre = torch.stack(units_).mean(0) if units_ else torch.zeros(q)  # (q,)

    def _unit(self, line: str) -> torch.Tensor | None:
        ids = [i for u in content_units(line, self.lang) if (i := self.index.get(u)) is not None]
        if not ids:
            return None
        v = self.vectors[ids].sum(0)  # (q,)
        n = float(v.norm())
        return v / n if n > 1e-12 else None

    def line_vector(self, line: str) -> torch.Tensor | None:
        """The line's centred unit vector (q,), or None when none of its words has a vector."""
        v = self._unit(line)
        return None if v is None else v - self.centre

    def poem_score(self, lines: Sequence[str]) -> float | None:
        """Mean cosine between the vectors of every two lines that have one; None when fewer than two do."""
        vecs = [v for l in lines if (v := self.line_vector(l)) is not None and float(v.norm()) > 1e-12]
        if len(vecs) < 2:
            return None
        m = torch.nn.functional.normalize(torch.stack(vecs), dim=1)  # (L, q)
        sim = m @ m.T  # (L, L)
        iu = torch.triu_indices(len(vecs), len(vecs), 1)
        return float(sim[iu[0], iu[1]].mean())

    def mean_score(self, poems: Iterable[Sequence[str]]) -> float:
        scores = [s for p in poems if (s := self.poem_score(p)) is not None]
        return sum(scores) / len(scores) if scores else float("nan")


@dataclass
class Yardsticks:
    """The fluency model, the co-occurrences and the training lines (normalised), fitted once per dataset."""

    lang: str
    kn: KneserNey
    coherence: Coherence
    train_lines: set[str]

    @classmethod
    def fit(cls, ds: PoemDataset, fit_lines: int | None = None, stop: int | None = None) -> "Yardsticks":
        lang = ds.lang
        limit = fit_lines if fit_lines is not None else FIT_LINES.get(lang, 400_000)
        kn = KneserNey.fit(units(l, lang) for l in ds.lines("train", limit))
        # LSA over whole training poems, as many as hold about `limit` lines
        poems = ds.poems["train"]
        per = max(1.0, sum(map(len, poems)) / max(1, len(poems)))
        keep = min(len(poems), int(limit / per) or 1)
        picked = sorted(random.Random(f"{ds.sha256}:cooc").sample(range(len(poems)), keep))
        coherence = Coherence([poems[i] for i in picked], lang, STOP_UNITS.get(lang, 50) if stop is None else stop)
        train = {_normalised(l) for l in ds.lines("train")}
        return cls(lang, kn, coherence, train)


def _normalised(line: str) -> str:
    """A line for the verbatim-copy check: lower case, letters and digits only, single spaces."""
    return " ".join(re.findall(r"\w+", line.lower()))


def _rows(poem_lines: Sequence[str], lang: str) -> list[str]:
    """A poem's decoded rows: en lines, zh clauses."""
    return [c for l in poem_lines for c in clauses(l)] if lang == "zh" else list(poem_lines)


def _real_poems(ds: PoemDataset, lang: str, n: int, lines: int, seed: int) -> tuple[list[list[str]], list[list[str]]]:
    """(n real held-out poems of ``lines`` printed lines, n poems of as many lines from n different poems)."""
    rows = lines * (2 if lang == "zh" else 1)
    long_enough = [p for p in ds.poems["heldout"] if len(p) >= rows]
    rng = random.Random(seed)
    real = [p[:rows] for p in rng.sample(long_enough, min(n, len(long_enough)))]
    mixed = []
    for _ in range(len(real)):
        donors = rng.sample(long_enough, rows) if len(long_enough) >= rows else [rng.choice(long_enough)] * rows
        mixed.append([rng.choice(p) for p in donors])
    if lang == "zh":  # printed lines of two clauses, as the poems Muse writes
        real = [[f"{a}，{b}。" for a, b in zip(p[0::2], p[1::2])] for p in real]
        mixed = [[f"{a}，{b}。" for a, b in zip(p[0::2], p[1::2])] for p in mixed]
    return real, mixed


@torch.no_grad()
def poem_readability(poem, ds: PoemDataset, *, n_poems: int = 200, lines: int = 4, n_heldout: int = 1000,
                     seed: int = 0, sticks: Yardsticks | None = None) -> dict[str, Any]:
    """The yardsticks on ``n_poems`` poems from a `PoemModel` (as `/poem` writes them: seeds ``seed`` ...,
    its default temperature and nucleus), against ``n_heldout`` real held-out lines, the same lines shuffled,
    real held-out poems, and poems mixed from lines of different poems. Also the same latents' lines decoded
    with independent centres, to show what the shared poem-level latent adds to coherence."""
    lang = poem.lang
    sticks = sticks or Yardsticks.fit(ds)
    outs = [poem.sample(seed + i, lines=lines) for i in range(n_poems)]
    sampled = [o.lines for o in outs]
    rows = [r for p in sampled for r in _rows(p, lang)]
    held = ds.lines("heldout", n_heldout)
    rng = random.Random(seed)
    shuffled = [rng.sample(u, len(u)) for u in (units(l, lang) for l in held)]
    # the same number of lines, each from its own independent draw of the prior (no shared centre)
    g = torch.Generator().manual_seed(seed)
    lat = torch.randn(n_poems, lines * (2 if lang == "zh" else 1), poem.model.cfg.latent_dim, generator=g)
    clause_len = poem.clause_length(g)
    independent = [o.lines for o in poem.decode_poems(lat, generator=g, clause_len=clause_len)]
    real, mixed = _real_poems(ds, lang, n_poems, lines, seed)

    grammar = _grammar_report(rows, held, seed) if lang == "en" else None
    populations = {"samples": [units(r, lang) for r in rows], "heldout": [units(l, lang) for l in held],
                   "shuffled": shuffled}
    slor = {k: sum(map(sticks.kn.slor, v)) / max(1, len(v)) for k, v in populations.items()}
    ppl = {k: sticks.kn.perplexity(v) for k, v in populations.items()}
    coherence = {
        "samples": sticks.coherence.mean_score(sampled),
        "independent_lines": sticks.coherence.mean_score(independent),
        "real_poems": sticks.coherence.mean_score(real),
        "mixed_lines": sticks.coherence.mean_score(mixed),
    }
    out: dict[str, Any] = {
        "n_poems": n_poems,
        "n_lines": len(rows),
        "slor": {k: round(v, 4) for k, v in slor.items()},
        "fluency_ratio": round(slor["samples"] / slor["heldout"], 4),  # samples' SLOR / real held-out lines'
        "shuffled_ratio": round(slor["shuffled"] / slor["heldout"], 4),
        "trigram_ppl": {k: round(v, 2) for k, v in ppl.items()},
        "coherence_lsa": {k: round(v, 4) for k, v in coherence.items()},
        "line_copy_rate": round(sum(_normalised(r) in sticks.train_lines for r in rows) / max(1, len(rows)), 4),
    }
    if lang == "zh":
        out["repeat3_rate"] = round(sum(max(Counter(r).values(), default=0) >= 3 for r in rows) / max(1, len(rows)), 4)
    if grammar is not None:
        out["grammar"] = grammar
    return out


def _grammar_report(rows: Sequence[str], held: Sequence[str], seed: int) -> dict[str, Any]:
    """Link Grammar's null links per word and the share of lines parsed fully: sampled lines, real held-out lines,
    the same lines shuffled (words and punctuation, case kept); usual and strict parses; ``gap_share``."""
    from .grammar import gap_share, grammar_check, shuffled

    check = grammar_check()
    rng = random.Random(f"{seed}:grammar")
    pops = {"samples": list(rows), "heldout": list(held), "shuffled": [shuffled(l, rng) for l in held]}
    parses = {k: check.parses(v) for k, v in pops.items()}

    def rate(ps, strict=False):
        return sum(p.strict_nulls if strict else p.nulls for p in ps) / max(1, sum(p.words for p in ps))

    def full(ps, strict=False):
        ps = [p for p in ps if p.words]
        return sum((p.strict_nulls if strict else p.nulls) == 0 for p in ps) / max(1, len(ps))

    npw = {k: rate(v) for k, v in parses.items()}
    return {
        "null_links_per_word": {k: round(v, 4) for k, v in npw.items()},
        "parsed_fully": {k: round(full(v), 4) for k, v in parses.items()},
        "strict_null_links_per_word": {k: round(rate(v, True), 4) for k, v in parses.items()},
        "strict_parsed_fully": {k: round(full(v, True), 4) for k, v in parses.items()},
        "gap_share": round(gap_share(npw["samples"], npw["heldout"], npw["shuffled"]), 4),
    }


READABILITY_TARGETS = {"en": 0.90, "zh": 0.50}  # sampled lines' SLOR at least this share of real held-out lines'


def readability_targets(r: dict[str, Any], lang: str) -> dict[str, bool]:
    t = {
        "fluency": r["fluency_ratio"] >= READABILITY_TARGETS[lang],
        "line_copy_rate": r["line_copy_rate"] < 0.05,
        "coherence": r["coherence_lsa"]["samples"] > r["coherence_lsa"]["mixed_lines"],
    }
    if lang == "zh":
        t["repeat3"] = r["repeat3_rate"] == 0
    if "grammar" in r:  # within a quarter of the real-to-shuffled gap, from real verse
        from .grammar import GAP_TARGET

        t["grammar"] = r["grammar"]["gap_share"] <= GAP_TARGET
    return t


__all__ = ["KneserNey", "Coherence", "Yardsticks", "poem_readability", "readability_targets", "units"]
