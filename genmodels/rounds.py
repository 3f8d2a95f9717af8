"""A group session's rounds, made by a model from plain state.

`first_round` draws a session's first candidates; `next_round` breeds the next round from the one before it and its
votes (`genmodels.breeding`: elite, slerp crossover, annealed mutation, fresh blood, and results members brought
in). A poem session's candidates are decoded in one batch. Both are pure functions of their arguments and the
model: the session's seed and the round number seed every draw (`breeding.round_generator`), so making a round twice
(a restart between storing and posting it) makes the same candidates.

Everything they take is plain data (numbers, text, numpy arrays), so a worker that holds the model can run them
wherever it is (`genmodels.operations`: ``session.first_round``, ``session.next_round``). What they return is what
the feedback store's ``add_round`` takes.

Shapes: an image candidate's genome is a latent (nz,); a poem candidate's is its line latents (L, D), L = 4 lines
(en) or 8 clauses (zh).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from . import breeding

# Lines sampled per latent row of a round's poems, the most fluent kept (`PoemModel.decode_poems`): a round decodes
# every candidate's lines at once and must be posted within 2 s of the close on a 2-core CPU (docs/BENCHMARKS.md),
# which the served models' 16 per row (`/poem`) do not allow.
ROUND_RERANK = 1
POEM_LINES = 4  # lines per poem candidate, as /poem writes them (so a /poem result can be brought in)


@dataclass(frozen=True)
class SessionPlan:
    """What breeding needs to know of a session."""

    kind: str  # "image" | "poem"
    seed: int  # the session's seed: every round's draws come from it and the round number
    candidates: int  # candidates per round
    rounds: int  # rounds in all (mutation anneals over them)
    theme: str | None = None  # a poem session's theme (its newcomers are drawn around it); unused for images
    temperature: float = 0.9  # a poem session's sampling temperature


@dataclass(frozen=True)
class Parent:
    """A candidate of the round just closed, in its index order."""

    latent: np.ndarray  # (nz,) or (L, D)
    content: str | None = None  # a poem's text


@dataclass(frozen=True)
class BroughtIn:
    """A result a member brought into the session for the next round (`/session seed`)."""

    latent: np.ndarray
    content: str | None
    user_id: int


@dataclass
class Bred:
    """A round's candidates as the store's ``add_round`` takes them, and the model version that made them. Each row:
    idx, op, parents, t, mutation, latent (float32 numpy), content, seeded_by."""

    rows: list[dict] = field(default_factory=list)
    version: str = ""


def clause_length(model: Any, plan: SessionPlan) -> int | None:
    """A Chinese poem session's clause length (5 or 7), drawn once from the session's seed, so every round of one
    session has lines of one length (None for English and for image sessions)."""
    if plan.kind != "poem":
        return None
    return model.clause_length(torch.Generator().manual_seed(plan.seed))


def _fresh(model: Any, plan: SessionPlan) -> Callable[[torch.Generator], torch.Tensor]:
    """How a newcomer's genome is drawn: a latent (nz,) for images, line latents (L, D) for poems."""
    if plan.kind == "image":
        return model.fresh_latent
    return lambda g: model.fresh_latents(g, lines=POEM_LINES, theme=plan.theme)


def _texts(model: Any, plan: SessionPlan, children: list[breeding.Child], known: list[str | None],
           generator: torch.Generator) -> list[str | None]:
    """Poems: the text of each child. Known texts (the elite's, a brought-in poem's) are kept as they are; the rest
    are decoded in one batch."""
    if plan.kind != "poem":
        return [None] * len(children)
    todo = [i for i, text in enumerate(known) if text is None]
    out = list(known)
    if todo:
        z = torch.stack([children[i].latent for i in todo])  # (n, L, D)
        poems = model.decode_poems(z, generator=generator, temperature=float(plan.temperature),
                                   clause_len=clause_length(model, plan), rerank=ROUND_RERANK)
        for i, poem in zip(todo, poems):
            out[i] = poem.text
    return out


def _rows(children: list[breeding.Child], texts: list[str | None], seeded_by: list[int | None]) -> list[dict]:
    return [{"idx": i, "op": c.op, "parents": list(c.parents), "t": c.t, "mutation": c.mutation,
             "latent": c.latent.detach().cpu().numpy().astype(np.float32), "content": texts[i],
             "seeded_by": seeded_by[i]} for i, c in enumerate(children)]


def first_round(model: Any, plan: SessionPlan) -> Bred:
    """Round 1: ``plan.candidates`` newcomers."""
    g = breeding.round_generator(plan.seed, 1)
    children = breeding.first_round(plan.candidates, _fresh(model, plan), g)
    texts = _texts(model, plan, children, [None] * len(children), g)
    return Bred(_rows(children, texts, [None] * len(children)), model.version)


def next_round(model: Any, plan: SessionPlan, number: int, prev: Sequence[Parent], votes: Sequence[int],
               none_votes: int = 0, brought_in: Sequence[BroughtIn] = (),
               cfg: breeding.BreedConfig = breeding.BreedConfig()) -> Bred:
    """Round ``number`` (≥ 2) bred from ``prev`` and its approvals per candidate (``votes``, one count per parent;
    ``none_votes``: "None of these"). Brought-in results whose genome has the parents' shape join as seeded
    children, at most ``cfg.max_seeds``; the rest (another model version's) are left out."""
    g = breeding.round_generator(plan.seed, number)
    latents = torch.stack([torch.from_numpy(np.asarray(p.latent, np.float32)) for p in prev])  # (n, *genome)
    shape = tuple(latents.shape[1:])
    usable = [s for s in brought_in if tuple(np.asarray(s.latent).shape) == shape][: cfg.max_seeds]
    children = breeding.breed(latents, list(votes), n=plan.candidates, round_number=number, rounds=plan.rounds,
                              fresh=_fresh(model, plan), generator=g, cfg=cfg, none_votes=none_votes,
                              seeds=[torch.from_numpy(np.asarray(s.latent, np.float32)) for s in usable])
    known: list[str | None] = []
    seeded_by: list[int | None] = []
    seed_iter = iter(usable)
    for c in children:
        if c.op == "elite":
            known.append(prev[c.parents[0]].content)
            seeded_by.append(None)
        elif c.op == "seeded":
            s = next(seed_iter)
            known.append(s.content)
            seeded_by.append(s.user_id)
        else:
            known.append(None)
            seeded_by.append(None)
    texts = _texts(model, plan, children, known, g)
    return Bred(_rows(children, texts, seeded_by), model.version)


def descent_path(latents: Sequence[np.ndarray], max_frames: int = 48) -> tuple[np.ndarray, int]:
    """The latents of an animation along a line of descent, ancestors (nz,) oldest first, and how many slerp
    in-betweens each step got (0 to 4, as many as ``max_frames`` allows): (K + (K - 1)·between, nz) float32."""
    z = torch.from_numpy(np.stack([np.asarray(x, np.float32) for x in latents]))  # (K, nz)
    k = len(z)
    between = 0 if k == 1 else max(0, min(4, (max_frames - k) // (k - 1)))
    return breeding.descent_frames(z, between).numpy(), between


__all__ = ["Bred", "BroughtIn", "Parent", "POEM_LINES", "ROUND_RERANK", "SessionPlan", "clause_length",
           "descent_path", "first_round", "next_round"]
