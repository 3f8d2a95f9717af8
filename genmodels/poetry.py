"""The poem API the bot calls: sample a poem, encode a line, morph one line into another.

    model = PoemModel.load("en")
    model.sample(seed=7, lines=4, theme="the sea at night")  # a PoemOutput; .text, and .latents (lines, D)
    model.morph("the moon is bright", "my heart is heavy", steps=5)  # a MorphOutput; .frames are the lines

Lines of one poem share a poem-level latent: z_i = sqrt(1 - a) c + sqrt(a) e_i with c, e_i ~ N(0, I), so every
z_i is still a draw from the prior N(0, I) while the lines stay in one neighbourhood. A theme replaces c by the
posterior mean of the theme text. For zh, each poem line is a couplet of two sampled clauses, and every clause of a
poem is decoded with the same length (5 or 7 characters, 五言 or 七言, drawn with the seed): a verse form imposed at
decoding time. The raw, unconstrained shape of the model's samples is measured in ``eval_text``.

Sample and rank: a version whose card sets ``sampling.rerank`` = K (`RERANK` for the versions trained since)
samples K lines from every latent row and keeps the one its LM baseline (``textlm-{lang}``, the card's
``baseline``) finds most probable per token, the end of the line included (`PoemModel.fluency`). The row, and so
the poem's latents, stay as drawn; only the words are chosen among K draws from p(x | z). Versions without it
decode one line per row, as they always did, so a seed keeps its poem per version. Verse forms rank each batch
of candidates instead (`_sample_form`).

Fusion: a version whose card sets ``sampling.lm_weight`` = w (`FUSION` for the versions trained since) draws
every token from (1 - w) log p(x_t | z, x_<t) + w log p_LM(x_t | x_<t), the same LM baseline fused in at each step
(shallow fusion, `TextVAE.sample`'s ``prior``). Ranking picks among whole lines; fusion steers each token, which
keeps a line grammatical where none of K unfused draws is. The latent still chooses what the line is about. Such a
version also sets ``sampling.temperature_scale``, which multiplies the caller's temperature:
`/poem`'s default 0.9 then samples where the fused model reads best, and the recorded temperature with the seed
still gives the same poem.

A verse form (``sample(..., form="quatrain")``: quatrain, couplet or haiku in English, 绝句 or 律诗 in Chinese) is
met by drawing candidate lines around the same centre in batches and assembling the form from them
(`genmodels.verse`); a form that cannot be met within the budget raises `FormNotMet`, a ValueError.

Group sessions breed poems as genomes of line latents (`genmodels.breeding`): `fresh_latents` draws a new poem's
(L, D) rows as `sample` does, `clause_length` draws its zh clause length, and `decode_poems` decodes N such genomes in
one batch without resampling any row.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import torch

from . import checkpoints, paths
from .latents import generator_for, slerp
from .outputs import MorphOutput, PoemOutput
from .data.tokenizer import TOKENIZER_FILE, detokenize, encode, load_tokenizer, pad_ids
from .nets.preference import LatentPreference
from .nets import dataclass_from_dict
from .nets.textvae import TextVAE, TextVAEConfig
from .verse import RHYME_SCHEMES, VerseConfig, check_form, compose

log = logging.getLogger(__name__)

MAX_INPUT_CHARS = 200
MAX_LINES = 16
MAX_MORPH_STEPS = 16
LINE_SPREAD = 0.5  # a in z_i = sqrt(1 - a) c + sqrt(a) e_i: how far lines of one poem wander from its centre
THEME_SPREAD = 0.5  # how far lines wander from a theme's posterior mean
ZH_FORMS = (5, 7)  # characters per clause: 五言 / 七言
ZH_SEVEN_P = 0.6  # share of 七言 poems (about the corpus's share of 7-character clauses)
MAX_REPEAT = {"zh": 2}  # no token more often than this in one decoded line (zh: no character thrice a clause)
RERANK = 16  # lines sampled per latent row, the LM's favourite kept, for versions whose card asks (`sampling.rerank`)
# Fusion for the versions trained since, per language (`sampling.lm_weight`: the LM baseline's share of each token's
# log-probability; `sampling.temperature_scale`: /poem's default 0.9 samples at 0.6). zh needs it to read as verse;
# en meets its fluency target by ranking alone, and fusion there cost a quarter of its distinct bigrams
# (docs/MODELS.md, "Fusion").
FUSION = {"zh": {"lm_weight": 0.5, "temperature_scale": 2 / 3}}
# Grammar-aware ranking (`sampling.grammar` = GRAMMAR, en): the K candidates of a row are ranked by Link Grammar's
# faults first (`genmodels.grammar.Parse.faults`: null links of the usual and the strict parse, words it does not
# know, surface faults such as "a old"), then by
# the LM's fluency less the parse's disjunct cost (`PoemModel.rank_scores`); a row whose best line still has a
# fault draws K more once (`_decode`).
GRAMMAR = "link-grammar"
GRAMMAR_WEIGHT = 100.0  # fluency units per fault: far above any gap in fluency, so faults decide first
MORPH_TEMPERATURE = 0.6  # a morph's sampled candidates, for points whose greedy line does not parse (`morph`)
MORPH_SEED = 0


def sampling_for(lang: str) -> dict:
    """The ``sampling`` entry of a new ``textvae-{lang}`` version's card: ranking, and fusion where it pays."""
    return {"rerank": RERANK, **FUSION.get(lang, {})}


def load_text_model(name: str, root: str | os.PathLike | None = None, device: str = "cpu",
                    version: int | None = None):
    """(model in eval mode, tokenizer, card) of ``name`` at ``version`` (the newest when None)."""
    model, tok, card, _ = _load_text(name, root, device, version)
    return model, tok, card


def _load_text(name: str, root, device: str, version: int | None):
    r = paths.find_model(name, root, version)
    tensors, card = checkpoints.load_version(r, name, version, device=device)
    vdir = checkpoints.version_dir(r, name, card["version"])
    if not (vdir / TOKENIZER_FILE).exists():
        raise checkpoints.CheckpointError(f"{vdir} has no {TOKENIZER_FILE}; re-copy the model or retrain.")
    tok = load_tokenizer(vdir / TOKENIZER_FILE)
    model = TextVAE(dataclass_from_dict(TextVAEConfig, card["config"]))
    # pref.* tensors are the latent preference learned from reactions (genmodels.feedback), not network weights
    checkpoints.load_into(model, tensors, name, skip=("pref.",))
    return model.to(device).eval(), tok, card, tensors


def baseline_of(card: dict) -> tuple[str, int] | None:
    """(name, version) of the LM baseline a text VAE's card names (``"baseline": "textlm-en/v0004"``), or None."""
    name, _, v = str(card.get("baseline", "")).rpartition("/")
    if not name.startswith("textlm-") or not v.startswith("v") or not v[1:].isdigit():
        return None
    return name, checkpoints.parse_tag(v)


def load_baseline(card: dict, root: str | os.PathLike | None = None, device: str = "cpu") -> TextVAE:
    """The LM baseline ``card`` names, in eval mode, from `paths.version_root`."""
    found = baseline_of(card)
    if found is None:
        raise checkpoints.CheckpointError(f"{card.get('name')} v{card.get('version')} names no textlm baseline; "
                                          "retrain it.")
    return load_text_model(found[0], paths.version_root(*found, root), device, found[1])[0]


def _sampling(card: dict) -> tuple[int, float, float]:
    """How a version's card asks its lines to be drawn (`sampling`): (rerank, lm_weight, temperature_scale), with
    plain sampling's 1, 0 and 1 for what it leaves out. rerank: lines sampled per latent row, the LM's favourite
    kept; lm_weight: the LM baseline's share of each token's log-probability (fusion); temperature_scale: what the
    caller's temperature is multiplied by, where the version's samples read best at `/poem`'s default. Whether the
    ranking also parses the lines is `_grammar`."""
    s = card.get("sampling", {})
    return int(s.get("rerank", 1)), float(s.get("lm_weight", 0.0)), float(s.get("temperature_scale", 1.0))


def _grammar(card: dict, lang: str) -> bool:
    """Whether a version's card asks its ranking to parse the lines (``sampling.grammar`` = "link-grammar"; en)."""
    g = card.get("sampling", {}).get("grammar")
    if g in (None, False, ""):
        return False
    if g != GRAMMAR or lang != "en":
        raise checkpoints.CheckpointError(f"{card.get('name')} v{card.get('version')} asks for the grammar check "
                                          f"{g!r}; Muse has {GRAMMAR!r}, for en only.")
    return True


class PoemModel:
    verse = VerseConfig()  # the candidate budget of verse forms (`sample(form=...)`); set per instance to change it

    def __init__(self, model: TextVAE, tok, card: dict, lang: str, device: str = "cpu",
                 preference: LatentPreference | None = None, scorer: TextVAE | None = None, grammar=None):
        self.model, self.tok, self.card, self.lang, self.device = model, tok, card, lang, device
        self.preference = preference  # learned from reactions (genmodels.feedback); None = the plain prior
        self.version = checkpoints.full_tag(card.get("name", f"textvae-{lang}"), card.get("version", 0))
        # the card's `_sampling`; ranking (K lines per row, 1 = plain) and fusion (0 = none) need the scorer, the LM
        # baseline
        self.scorer = scorer
        rerank, lm_weight, self.temperature_scale = _sampling(card)
        self.rerank, self.lm_weight = (rerank, lm_weight) if scorer is not None else (1, 0.0)
        # a `genmodels.grammar.LinkGrammar` when the card's ranking parses the lines (`_grammar`); None: the LM alone
        self.grammar = grammar if self.rerank > 1 else None

    @classmethod
    def load(cls, lang: str, root: str | os.PathLike | None = None, device: str = "cpu",
             version: int | None = None) -> "PoemModel":
        model, tok, card, tensors = _load_text(f"textvae-{lang}", root, device, version)
        rerank, lm_weight, _ = _sampling(card)
        scorer = load_baseline(card, root, device) if rerank > 1 or lm_weight > 0 else None
        grammar = None
        if rerank > 1 and _grammar(card, lang):
            from .grammar import GrammarUnavailable, grammar_check

            try:
                grammar = grammar_check()
            except GrammarUnavailable as e:  # the poems still come, ranked by the LM alone: say what is missing
                log.warning("%s v%s ranks its lines with the Link Grammar parser, which is not available (%s); "
                            "ranking by the LM alone, so its lines parse less often and a seed's poem differs "
                            "from one on a host with the parser", card.get("name"), card.get("version"), e)
        return cls(model, tok, card, lang, device, LatentPreference.from_version(tensors, card), scorer, grammar)

    # ----------------------------------------------------------------------------------------------------

    def _check(self, text: str, what: str = "text") -> list[int]:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"Please give me some {what} to work with; it was empty.")
        if len(text) > MAX_INPUT_CHARS:
            raise ValueError(f"That {what} is {len(text)} characters; please keep it under {MAX_INPUT_CHARS}.")
        ids = encode(self.tok, text.strip())[: self.model.cfg.max_len]
        if not ids or all(i == 1 for i in ids):  # 1 = [UNK]
            lang = "English" if self.lang == "en" else "Chinese"
            raise ValueError(f"I don't know any of the words in that {what}; try some more {lang} words.")
        return ids

    @torch.no_grad()
    def encode(self, text: str) -> torch.Tensor:
        """Posterior mean E_q[z | text], shape (D,)."""
        ids = self._check(text)
        x = torch.tensor([ids], device=self.device)
        mu, _ = self.model.encode(x, torch.tensor([len(ids)], device=self.device))
        return mu[0].cpu()

    def _text(self, ids: list[int]) -> str:
        return detokenize(self.tok, ids, self.lang)

    def _decode(self, z: torch.Tensor, g: torch.Generator, temperature: float, top_p: float,
                length: int | None, rerank: int | None = None) -> list[str]:
        """Sample one line from each latent row of z (N, D), as text; every sampler of this class decodes here.
        With ``rerank`` K > 1 (default: the version's; never more), each row's K samples are decoded in the same
        batch (N·K rows, row i's at i·K ... i·K + K - 1) and the most fluent by `fluency` is kept (the first of
        equals)."""
        k = self.rerank if rerank is None else max(1, min(int(rerank), self.rerank))
        ids = self._sample_ids(z.repeat_interleave(k, dim=0), g, temperature, top_p, length)  # N·K lines
        if k > 1:
            top, best = self.rank_scores(ids).view(-1, k).max(dim=1)  # (N,), (N,): the first of equals
            ids = [ids[i * k + int(j)] for i, j in enumerate(best)]
            # grammar-aware ranking: rows whose best line still has a null link (or a word the parser does not
            # know) draw K more lines once, in one batch, and keep the better-ranked of the two bests
            again = [i for i, t in enumerate(top.tolist()) if t < -GRAMMAR_WEIGHT / 2] if self.grammar else []
            if again:
                more = self._sample_ids(z[again].repeat_interleave(k, dim=0), g, temperature, top_p, length)
                top2, best2 = self.rank_scores(more).view(-1, k).max(dim=1)
                for r, i in enumerate(again):
                    if float(top2[r]) > float(top[i]):
                        ids[i] = more[r * k + int(best2[r])]
        return [self._text(row).strip() for row in ids]

    def rank_scores(self, ids: list[list[int]]) -> torch.Tensor:
        """How each candidate line (token ids) ranks, higher better (N,): its `fluency`; when the version's ranking
        parses lines (`genmodels.grammar.Parse`), less GRAMMAR_WEIGHT per fault (`Parse.faults`: null links of the
        usual and of the strict parse, words the parser does not know, surface faults such as "a old"), and less
        the usual parse's disjunct cost. Deterministic, so a seed still names its poem."""
        scores = self.fluency(ids)
        if self.grammar is None:
            return scores
        parses = self.grammar.parses(self._text(row).strip() for row in ids)
        faults = torch.tensor([float(p.faults) for p in parses])
        cost = torch.tensor([p.cost for p in parses])
        return scores - GRAMMAR_WEIGHT * faults - cost

    def _sample_ids(self, z: torch.Tensor, g: torch.Generator, temperature: float, top_p: float,
                    length: int | None) -> list[list[int]]:
        """One sampled line (token ids) from each latent row of z (N, D), at the caller's temperature times the
        version's `temperature_scale`."""
        return self.model.sample(z.to(self.device), temperature=temperature * self.temperature_scale, top_p=top_p,
                                 generator=g, length=length, max_repeat=MAX_REPEAT.get(self.lang, 0),
                                 prior=self.scorer, prior_weight=self.lm_weight)

    @torch.no_grad()
    def fluency(self, ids: list[list[int]]) -> torch.Tensor:
        """Mean log-probability per token of each line (token ids, no specials), its end included, under the LM
        baseline (N,): log p_LM(x_1 ... x_T, EOS) / (T + 1). -inf for an empty line, which is never preferred."""
        if self.scorer is None:
            raise ValueError(f"{self.version} has no LM baseline loaded to score lines with.")
        x, lengths = pad_ids(ids)  # (N, T), (N,)
        logp = self.scorer.log_px_z(x.to(self.device), lengths.to(self.device), None).float().cpu()  # (N,)
        return (logp / (lengths + 1)).masked_fill(lengths == 0, -float("inf"))

    # ---- the pieces of a poem's draw, shared by `sample` and the group sessions' `fresh_latents` ----

    @property
    def _rows_per_line(self) -> int:
        """Decoded rows per poem line: 2 for zh (a couplet of two clauses), 1 for en."""
        return 2 if self.lang == "zh" else 1

    def _centre(self, g: torch.Generator, theme: str | None) -> tuple[torch.Tensor, float]:
        """(c (D,), a): a poem's centre and spread. A theme's posterior mean with THEME_SPREAD (no draw), else one
        draw from the preference (or N(0, I)) with LINE_SPREAD."""
        if theme is not None:
            return self.encode(theme), THEME_SPREAD
        if self.preference is not None:
            return self.preference.sample(1, g)[0], LINE_SPREAD
        return torch.randn(self.model.cfg.latent_dim, generator=g), LINE_SPREAD

    def _spread(self, centre: torch.Tensor, spread: float, n: int, g: torch.Generator) -> torch.Tensor:
        """n line latents (n, D) around ``centre``: z_i = sqrt(1 - a) c + sqrt(a) e_i, e_i ~ N(0, I) from g."""
        eps = torch.randn(n, self.model.cfg.latent_dim, generator=g)  # (n, D)
        return math.sqrt(1 - spread) * centre + math.sqrt(spread) * eps

    def clause_length(self, generator: torch.Generator) -> int | None:
        """The zh clause length (5 or 7, 五言 or 七言) drawn from ``generator`` as `sample` draws it (one uniform
        draw); None, drawing nothing, for en and for a zh model whose card says fewer than 80 % of its training
        clauses had 5 or 7 characters."""
        if self.lang == "zh" and self.card.get("line_shape", {}).get("share_5or7", 1.0) >= 0.8:
            return ZH_FORMS[1] if float(torch.rand((), generator=generator)) < ZH_SEVEN_P else ZH_FORMS[0]
        return None

    @torch.no_grad()
    def fresh_latents(self, generator: torch.Generator, lines: int = 4, theme: str | None = None) -> torch.Tensor:
        """A new poem's line latents (L, D), L = ``lines`` (en) or 2·``lines`` (zh, two clauses a line), drawn as
        `sample` draws its first attempt: the centre (``theme``'s posterior mean, else the preference or N(0, I)),
        then L Gaussian offsets. Unlike `sample`, no verse form is drawn in between (see `clause_length`). A group
        session's newcomer genome (`genmodels.breeding`)."""
        if not 1 <= int(lines) <= MAX_LINES:
            raise ValueError(f"A poem can have 1 to {MAX_LINES} lines.")
        centre, spread = self._centre(generator, theme)
        return self._spread(centre, spread, int(lines) * self._rows_per_line, generator)  # (L, D)

    @torch.no_grad()
    def decode_poems(self, latents: torch.Tensor, *, generator: torch.Generator, temperature: float = 0.9,
                     top_p: float = 0.9, clause_len: int | None = None, rerank: int | None = None) -> list[PoemOutput]:
        """Decode N poems from explicit line latents ``latents`` (N, L, D): one per row, nothing resampled.

        All N·L rows go through the decoder in one batched `TextVAE.sample` call, then the rows that came out empty
        are decoded once more in a second batched call (a row still empty stays an empty line, so lines and latent
        rows stay aligned). zh: L must be even; clauses 2j and 2j+1 become the line "a，b。", and ``clause_len`` (5, 7
        or None, see `clause_length`) fixes every clause's length (a verse form is `sample`'s ``form``).
        Deterministic given the generator state. Each output's ``latents`` are its poem's rows (L, D) and its
        ``seed`` is None. ``rerank``: lines sampled per row, the most fluent kept (None: the version's `rerank`; 1: one line per row, N·L rows in one call, for callers with
        a latency target).
        """
        if not 0 < top_p <= 1:
            raise ValueError("top_p must be in (0, 1].")
        if clause_len is not None and clause_len not in ZH_FORMS:
            raise ValueError(f"clause_len must be one of {ZH_FORMS} or None; got {clause_len!r}.")
        temperature = min(max(float(temperature), 0.0), 2.0)
        D, per_line = self.model.cfg.latent_dim, self._rows_per_line
        latents = torch.as_tensor(latents).detach().float().cpu()
        if latents.ndim != 3 or latents.shape[2] != D or latents.shape[1] < 1 or latents.shape[1] % per_line:
            rows = "an even number of" if per_line == 2 else "at least one"
            raise ValueError(f"latents must have shape (N, L, {D}) with {rows} rows L per poem; "
                             f"got {tuple(latents.shape)}.")
        N, L, _ = latents.shape
        flat = latents.reshape(N * L, D)  # (N·L, D), poem-major
        texts = self._decode(flat, generator, temperature, top_p, clause_len, rerank)
        empty = [i for i, text in enumerate(texts) if not text]
        if empty:
            for i, text in zip(empty, self._decode(flat[empty], generator, temperature, top_p, clause_len, rerank)):
                texts[i] = text
        outputs = []
        for k in range(N):
            rows = texts[k * L:(k + 1) * L]
            poem = [f"{a}，{b}。" for a, b in zip(rows[0::2], rows[1::2])] if per_line == 2 else rows
            params = {"lang": self.lang, "lines": L // per_line, "temperature": temperature, "top_p": top_p,
                      "clause_len": clause_len}
            outputs.append(PoemOutput("\n".join(poem), poem, latents[k].clone(), None, self.version, params))
        return outputs

    @torch.no_grad()
    def sample(self, seed: int | None = None, lines: int = 4, temperature: float = 0.9, top_p: float = 0.9,
               theme: str | None = None, *, generator: torch.Generator | None = None,
               form: str | None = None) -> PoemOutput:
        """A poem of ``lines`` lines from ``seed`` or a (CPU) ``generator``, exactly one; the same arguments (or
        generator state) give the same text and latents.

        ``form`` is a verse form of the model's language (`genmodels.verse.FORMS`): None or "free" (the default: the
        lines as drawn, byte for byte what `sample` always gave), "quatrain" (4 lines rhymed ABAB or AABB, the order
        drawn with the seed), "couplet" (2 rhymed lines), "haiku" (5, 7 and 5 syllables); zh: "jueju" (绝句, four
        clauses, two printed lines "a，b。") or "lushi" (律诗, eight clauses, four lines), clauses of one length (5 or
        7, drawn as for a free poem), the even clauses rhyming in one 平声 group, tones as close to a standard 平仄
        pattern as the candidates allow. A form fixes the number of lines (``lines`` is then ignored) and records
        itself in ``params`` ("form", "scheme", "batches"; zh also "length", "rhyme", "tones": matched/total
        positions). `FormNotMet` (a ValueError with a message for a member) when the candidates drawn within
        `PoemModel.verse` cannot meet it; ValueError for a form the language does not have.
        """
        form = check_form(form, self.lang)
        if not 1 <= int(lines) <= MAX_LINES:
            raise ValueError(f"A poem can have 1 to {MAX_LINES} lines.")
        if not 0 < top_p <= 1:
            raise ValueError("top_p must be in (0, 1].")
        temperature = min(max(float(temperature), 0.0), 2.0)
        g = generator_for(None if seed is None else int(seed), generator)
        D = self.model.cfg.latent_dim
        n = lines * self._rows_per_line
        centre, spread = self._centre(g, theme)
        if form != "free":
            return self._sample_form(form, g, centre, spread, temperature, top_p, seed, theme)
        length = self.clause_length(g)
        out: list[str] = []
        rows: list[torch.Tensor] = []  # the latent each kept line was decoded from
        seen: set[str] = set()
        for attempt in range(4):  # resample lines that are empty or repeat an earlier line
            z = self._spread(centre, spread, n, g)  # (n, D)
            for text, zi in zip(self._decode(z, g, temperature, top_p, length), z):
                if text and (text not in seen or attempt == 3) and len(out) < n:
                    seen.add(text)
                    out.append(text)
                    rows.append(zi)
            if len(out) >= n:
                break
        if self.lang == "zh":
            poem = [f"{a}，{b}。" for a, b in zip(out[0::2], out[1::2])]
            rows = rows[: 2 * len(poem)]
        else:
            poem = out
        latents = torch.stack(rows) if rows else torch.zeros(0, D)
        params = {"lang": self.lang, "lines": int(lines), "temperature": temperature, "top_p": top_p, "theme": theme,
                  "form": "free"}
        return PoemOutput("\n".join(poem), poem, latents, None if seed is None else int(seed), self.version, params)

    def _sample_form(self, form: str, g: torch.Generator, centre: torch.Tensor, spread: float, temperature: float,
                     top_p: float, seed: int | None, theme: str | None) -> PoemOutput:
        """`sample` with a verse form, after the centre is drawn: zh draws the clause length (as `clause_length`, or
        one uniform draw when the card gives none), a quatrain its order (one uniform draw); then `compose` asks
        for batches of candidates, each ``self.verse.batch`` latents (B, D) around the centre decoded in one call,
        one line per latent. A version that ranks its lines (``rerank`` > 1) hands each batch over most fluent
        first instead of drawing K lines per latent, so the form is met from the most fluent lines that meet it at
        the cost of one scoring pass per batch."""
        length, scheme = None, RHYME_SCHEMES[0]
        if self.lang == "zh":
            length = self.clause_length(g) or (ZH_FORMS[1] if float(torch.rand((), generator=g)) < ZH_SEVEN_P
                                            else ZH_FORMS[0])
        elif form == "quatrain":
            scheme = RHYME_SCHEMES[int(float(torch.rand((), generator=g)) >= 0.5)]
        drawn: list[torch.Tensor] = []  # each batch's latents (B, D), in order

        def draw(n: int) -> list[str]:
            z = self._spread(centre, spread, n, g)  # (n, D)
            ids = self._sample_ids(z, g, temperature, top_p, length)  # one line per row
            if self.rerank > 1:  # the batch in ranked order, so that the form takes the best-ranked lines it can
                order = self.rank_scores(ids).argsort(descending=True, stable=True).tolist()
                z, ids = z[order], [ids[i] for i in order]
            drawn.append(z)
            return [self._text(row).strip() for row in ids]

        verse = compose(form, draw, self.verse, length=length, scheme=scheme)
        latents = torch.cat(drawn)[torch.tensor(verse.picks, dtype=torch.long)]  # (L, D): the rows kept, in order
        rows = verse.rows
        poem = [f"{a}，{b}。" for a, b in zip(rows[0::2], rows[1::2])] if self.lang == "zh" else rows
        params = {"lang": self.lang, "lines": len(poem), "temperature": temperature, "top_p": top_p, "theme": theme,
                  **verse.params}
        if length is not None:
            params["length"] = length
        return PoemOutput("\n".join(poem), poem, latents, None if seed is None else int(seed), self.version, params)

    @torch.no_grad()
    def morph(self, a: str, b: str, steps: int = 5) -> MorphOutput:
        """Decode ``steps`` points along the slerp between the posterior means of ``a`` and ``b``: the lines are
        the output's ``frames``, the points its ``latents`` (steps, D). Deterministic (greedy decodes of posterior
        means), so there is nothing to seed.

        The endpoints are the lines as typed (stripped); the points in between are greedy decodes. How well the
        latent alone reproduces a line is measured separately (``recon_f1`` in ``eval_text``). A version whose
        ranking parses lines (`_grammar`) keeps a greedy decode only when it parses without a fault; otherwise the
        point's line is the best-ranked (`rank_scores`) of that decode and ``rerank`` lines sampled from the point
        at MORPH_TEMPERATURE, from a generator seeded with MORPH_SEED, so a morph stays a function of its ends.
        """
        if not 2 <= int(steps) <= MAX_MORPH_STEPS:
            raise ValueError(f"Morph takes 2 to {MAX_MORPH_STEPS} steps.")
        self._check(a, "first line"), self._check(b, "second line")
        za, zb = self.encode(a), self.encode(b)
        zs = slerp(za, zb, torch.linspace(0, 1, steps))  # (steps, D)
        greedy = self.model.greedy(zs.to(self.device), max_repeat=MAX_REPEAT.get(self.lang, 0))
        if self.grammar is not None and steps > 2:
            greedy[1:-1] = self._ranked_points(zs[1:-1], greedy[1:-1])
        decoded = [self._text(ids) for ids in greedy]
        decoded[0], decoded[-1] = " ".join(a.split()), " ".join(b.split())
        return MorphOutput(decoded, zs, self.version)

    def _ranked_points(self, zs: torch.Tensor, greedy: list[list[int]]) -> list[list[int]]:
        """For each point of zs (M, D): its greedy decode when that parses without a fault, else the best-ranked of
        it and K lines sampled from the point (one batch of M·K rows, a generator seeded with MORPH_SEED)."""
        k, m = self.rerank, len(greedy)
        g = torch.Generator().manual_seed(MORPH_SEED)
        drawn = self._sample_ids(zs.repeat_interleave(k, dim=0), g, MORPH_TEMPERATURE, 0.9, None)  # M·K lines
        scores = self.rank_scores(list(greedy) + drawn)  # (M + M·K,)
        out = []
        for i in range(m):
            if float(scores[i]) > -GRAMMAR_WEIGHT / 2:  # the greedy line parses: keep the latent's own line
                out.append(greedy[i])
                continue
            j = int(scores[m + i * k: m + (i + 1) * k].argmax())
            out.append(drawn[i * k + j] if float(scores[m + i * k + j]) > float(scores[i]) else greedy[i])
        return out
