"""Interactive evolution in a latent space: the breeding behind group sessions.

A group session shows a channel N numbered candidates per round (images from the DCGAN, poems from a text VAE);
members vote by approval (any number of candidates each, or "none of these"), and the winners are bred into the
next round. A candidate is its *genome*, a latent of shape S: (nz,) for an image, (L, D) for a poem, one row per
decoded line (clause, for zh). Every function here is pure: all randomness comes from the `torch.Generator` passed
in, drawn in a fixed order, so a session is replayed bit for bit from its seed and its votes.

Method, one round (`breed`)::

    parents   p_0..p_{k-1} = the k most-voted candidates with at least one vote (ties: lower index), k <= parents
    elite     p_0 unchanged                                              elitism (Bontrager et al. 2018)
    seeded    up to max_seeds genomes members imported                   (/session seed)
    children  a ~ votes over parents, b ~ votes over parents \\ {a}      fitness-proportional selection
              t ~ U(t_low, 1 - t_low)
              z = slerp(a, b, t)         (nz,)  or row by row  (L, D)   crossover (Ganbreeder; White 2016)
              z = sqrt(1 - m^2) z + m e,  e ~ N(0, I)                    mutation (latents.mutate)
              one parent only: z = mutate(p_0), a "mutant"
    fresh     f newcomers from the prior                                 diversity (Bontrager et al. 2018)

- Crossover and mutation follow Ganbreeder (Joel Simon, 2018), which breeds BigGAN images by mixing the genes of
  parents and perturbing a child's latent. Here the genes are mixed along the great circle between the parents
  rather than coordinate by coordinate: for Gaussian latents, spherical interpolation (White 2016, "Sampling
  Generative Networks") keeps a child on the prior's shell, |z| ~ sqrt(D), where the generator was trained; a
  straight line would pull it toward the origin. A poem's (L, D) genome crosses over row by row with one t, so
  line i of the child lies between lines i of its parents.
- Mutation is `latents.variation` with fresh noise: for parents on the prior, sqrt(1 - m^2) z + m e is again a
  prior draw, so mutation too keeps children on the shell. Its scale m is annealed geometrically from
  ``mutation_start`` (round 2, the first bred round: explore) to ``mutation_end`` (the last round: refine), the
  usual cooling of an evolution strategy's step size.
- Deep Interactive Evolution (Bontrager, Lin, Togelius and Risi, EvoMUSART 2018) evolves GAN latents with human
  selection: the selected individuals survive unchanged into the next generation, their offspring come from
  crossover and mutation, and a few random newcomers (about two a generation) keep the population from collapsing
  onto one neighbourhood. We keep only the top parent as the elite (a round has few slots: 4 to 9), and add one
  newcomer to rounds of up to 5 candidates, two to larger rounds. When "none of these" outvotes every candidate,
  at least half the next round is new; when nobody voted for any candidate and someone said "none of these", the
  next round is entirely new (imported seeds first).

Shapes: N candidates in the previous round, n in the round being bred, S a genome's shape ((nz,) or (L, D)), K
ancestors in a line of descent. Rounds are numbered from 1 (`first_round`); `breed` makes round 2 onwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from .latents import crossover, mutate, slerp

OPS = ("initial", "elite", "cross", "mutant", "fresh", "seeded")
_SEED_MIX = 1_000_003  # a prime: round_generator's seed is seed * _SEED_MIX + round_number (mod 2**63)


class NoVotes(ValueError):
    """breed() was called on a round nobody voted in (not even 'none of these')."""


@dataclass(frozen=True)
class BreedConfig:
    parents: int = 3  # top-voted candidates that become parents (fewer when fewer got any vote); 2..3 sensible
    fresh: int = 0  # fresh random candidates per round; 0 = automatic: 1 for rounds of up to 5 candidates, else 2
    t_low: float = 0.2  # crossover fraction t ~ U(t_low, 1 - t_low)
    mutation_start: float = 0.45  # mutation strength (latents.mutate scale) of round 2's children ...
    mutation_end: float = 0.15  # ... annealed geometrically to this in the last round
    max_seeds: int = 2  # members' imported results (/session seed) entering one round

    def __post_init__(self) -> None:
        if self.parents < 1:
            raise ValueError(f"BreedConfig.parents must be at least 1; got {self.parents}")
        if self.fresh < 0 or self.max_seeds < 0:
            raise ValueError(f"BreedConfig.fresh and max_seeds must be >= 0; got {self.fresh}, {self.max_seeds}")
        if not 0 <= self.t_low <= 0.5:
            raise ValueError(f"BreedConfig.t_low must be in [0, 0.5]; got {self.t_low}")
        for name in ("mutation_start", "mutation_end"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"BreedConfig.{name} must be in (0, 1]; got {getattr(self, name)}")


@dataclass(frozen=True, eq=False)  # eq=False: a tensor field has no single truth value (compare fields instead)
class Child:
    latent: torch.Tensor  # the genome, shape S: (nz,) for an image, (L, D) for a poem (one row per decoded line)
    op: str  # one of OPS
    parents: tuple[int, ...]  # 0-based indexes into the previous round's candidates; () for initial/fresh/seeded
    t: float | None  # the crossover fraction ('cross' only)
    mutation: float  # the mutation scale applied (0.0 for elite/initial/fresh/seeded)


def round_generator(seed: int, round_number: int) -> torch.Generator:
    """A CPU generator for breeding round ``round_number`` of the session with ``seed``: seeded with
    ``(seed * 1_000_003 + round_number) mod 2**63``, so each round has its own stream and a replay of one round
    needs no other round's draws."""
    return torch.Generator().manual_seed((int(seed) * _SEED_MIX + int(round_number)) % 2**63)


def mutation_size(round_number: int, rounds: int, cfg: BreedConfig = BreedConfig()) -> float:
    """The mutation scale m of the children of round ``round_number`` (>= 2, the round being bred) of ``rounds``.

    Geometric: m = start · (end / start) ** ((r - 2) / (rounds - 2)), from ``cfg.mutation_start`` at round 2 to
    ``cfg.mutation_end`` at round ``rounds``; r is clamped to [2, rounds], and sessions of at most 2 rounds use
    the start value.
    """
    start, end = cfg.mutation_start, cfg.mutation_end
    if rounds <= 2:
        return start
    r = min(max(int(round_number), 2), int(rounds))
    return start * (end / start) ** ((r - 2) / (rounds - 2))


def rank_parents(votes: Sequence[int], k: int) -> list[int]:
    """The indexes of the candidates with votes > 0, most votes first (ties: lower index first), at most ``k``."""
    voted = [i for i, v in enumerate(votes) if v > 0]
    return sorted(voted, key=lambda i: (-votes[i], i))[: max(int(k), 0)]


def session_winner(votes: Sequence[int], ops: Sequence[str]) -> int | None:
    """The winner of a session, from its last round: the most-voted candidate (ties: the lower index); when nobody
    voted, the round's elite (candidate 0, the best of the round before), if it has one; else None."""
    top = rank_parents(votes, 1)
    if top:
        return top[0]
    return 0 if ops and ops[0] == "elite" else None


def _fresh(fresh: Callable[[torch.Generator], torch.Tensor], generator: torch.Generator,
           shape: torch.Size | None) -> torch.Tensor:
    z = fresh(generator)
    if not isinstance(z, torch.Tensor) or (shape is not None and z.shape != shape):
        got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(f"fresh(generator) must return a tensor of the genome shape {tuple(shape or ())}; got {got}")
    return z


def first_round(n: int, fresh: Callable[[torch.Generator], torch.Tensor],
                generator: torch.Generator) -> list[Child]:
    """Round 1: ``n`` candidates drawn by ``fresh(generator)`` in order (e.g. `ImageGenerator.fresh_latent`,
    `PoemModel.fresh_latents`), op 'initial'."""
    if n < 1:
        raise ValueError(f"a round needs at least one candidate; got n={n}")
    out: list[Child] = []
    for _ in range(n):
        z = _fresh(fresh, generator, out[0].latent.shape if out else None)
        out.append(Child(z, "initial", (), None, 0.0))
    return out


def _pick(weights: torch.Tensor, generator: torch.Generator) -> int:
    """One index drawn with probability proportional to ``weights`` (P,), from ``generator``."""
    return int(torch.multinomial(weights, 1, generator=generator))


def breed(latents: torch.Tensor, votes: Sequence[int], *, n: int, round_number: int, rounds: int,
          fresh: Callable[[torch.Generator], torch.Tensor], generator: torch.Generator,
          cfg: BreedConfig = BreedConfig(), none_votes: int = 0,
          seeds: Sequence[torch.Tensor] = ()) -> list[Child]:
    """The ``n`` candidates of round ``round_number`` of ``rounds``, bred from the previous round.

    ``latents`` (N, *S) are the previous round's genomes, ``votes`` (N entries) their approval counts,
    ``none_votes`` how many members picked "none of these", ``seeds`` genomes of shape S that members imported.
    ``fresh(generator)`` draws one newcomer of shape S from the prior.

    Rules:

    - No vote at all (sum(votes) == 0 and none_votes == 0): `NoVotes`.
    - Everything rejected (sum(votes) == 0, none_votes > 0): no elite and no children; up to ``cfg.max_seeds``
      seeds (at most n), then fresh candidates fill the n slots.
    - Otherwise the parents are ``rank_parents(votes, cfg.parents)`` and the round is, in this order:
      [elite] + seeded + children + fresh, where

      - elite: the top parent p_0, bit-identical (op 'elite', parents (p_0,));
      - seeded: the first ``cfg.max_seeds`` seeds (op 'seeded');
      - fresh: f = ``cfg.fresh`` or (1 if n <= 5 else 2), raised to n // 2 when none_votes > max(votes);
      - children: c = n - 1 - seeds - f. When c < 1, f is lowered (not below 0) until c >= 1, then seeds are
        dropped; n = 1 leaves the elite alone. With two or more parents each child draws a ∝ votes, then
        b ≠ a ∝ votes, t ~ U(t_low, 1 - t_low), crosses over (slerp; row by row for (L, D)) and mutates with
        scale ``mutation_size(round_number, rounds, cfg)``: op 'cross', parents (a, b). With one parent a child is
        that parent mutated: op 'mutant', parents (a,), t None.

    Draw order from ``generator``: per child a, b, t, the mutation noise (one parent: the noise only); then each
    fresh candidate. The same inputs and generator state give identical outputs. Parents' indexes refer to
    ``latents``. ValueError on n < 1, a votes length other than N, negative votes, or a seed or fresh draw whose
    shape is not S.
    """
    if n < 1:
        raise ValueError(f"a round needs at least one candidate; got n={n}")
    if not isinstance(latents, torch.Tensor) or latents.ndim not in (2, 3) or len(latents) < 1:
        got = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
        raise ValueError(f"latents must be a tensor (N, nz) or (N, L, D) with N >= 1; got {got}")
    if len(votes) != len(latents):
        raise ValueError(f"votes has {len(votes)} entries but there are {len(latents)} candidates")
    votes = [int(v) for v in votes]
    if min(votes) < 0 or none_votes < 0:
        raise ValueError(f"vote counts must be >= 0; got votes={votes}, none_votes={none_votes}")
    shape = latents.shape[1:]  # S
    for i, s in enumerate(seeds):
        if not isinstance(s, torch.Tensor) or s.shape != shape:
            got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
            raise ValueError(f"seed {i} must have the genome shape {tuple(shape)}; got {got}")
    if sum(votes) == 0 and none_votes == 0:
        raise NoVotes("Nobody voted in this round, not even for 'none of these'.")

    if sum(votes) == 0:  # the group rejected every candidate: start over from seeds and the prior
        used = [Child(s.detach().clone(), "seeded", (), None, 0.0) for s in seeds[: min(cfg.max_seeds, n)]]
        return used + [Child(_fresh(fresh, generator, shape), "fresh", (), None, 0.0) for _ in range(n - len(used))]

    parents = rank_parents(votes, cfg.parents)
    used_seeds = list(seeds[: cfg.max_seeds])
    f = cfg.fresh or (1 if n <= 5 else 2)
    if none_votes > max(votes):
        f = max(f, n // 2)
    c = n - 1 - len(used_seeds) - f
    if c < 1:
        f = max(0, f - (1 - c))
        c = n - 1 - len(used_seeds) - f
    if c < 1:
        used_seeds = used_seeds[: max(0, n - 2 - f)]
        c = max(0, n - 1 - len(used_seeds) - f)

    out = [Child(latents[parents[0]].detach().clone(), "elite", (parents[0],), None, 0.0)]
    out += [Child(s.detach().clone(), "seeded", (), None, 0.0) for s in used_seeds]
    m = mutation_size(round_number, rounds, cfg)
    weights = torch.tensor([float(votes[p]) for p in parents], dtype=torch.float64)  # (P,), all > 0
    for _ in range(c):
        if len(parents) == 1:
            z = mutate(latents[parents[0]], m, generator)
            out.append(Child(z, "mutant", (parents[0],), None, m))
            continue
        ia = _pick(weights, generator)
        ib = _pick(weights.index_fill(0, torch.tensor([ia]), 0.0), generator)
        t = cfg.t_low + (1 - 2 * cfg.t_low) * float(torch.rand((), generator=generator, dtype=torch.float64))
        a, b = parents[ia], parents[ib]
        z = mutate(crossover(latents[a], latents[b], t), m, generator)  # S
        out.append(Child(z, "cross", (a, b), t, m))
    out += [Child(_fresh(fresh, generator, shape), "fresh", (), None, 0.0) for _ in range(f)]
    return out


def line_of_descent(parents_by_round: Sequence[Sequence[tuple[int, ...]]], winner: int) -> list[tuple[int, int]]:
    """The ancestry of candidate ``winner`` of the last round, following each candidate's first parent back.

    ``parents_by_round[r][i]`` are the parents of candidate i of round r (0-based round index; `Child.parents`).
    Returns [(round_index, candidate_index), ...] oldest first, ending at (last round, winner). It stops at a
    candidate without parents (an initial, fresh or seeded one), so it may start after round 0.
    """
    if not parents_by_round:
        raise ValueError("line_of_descent needs at least one round")
    r, i = len(parents_by_round) - 1, int(winner)
    if not 0 <= i < len(parents_by_round[r]):
        raise ValueError(f"winner {i} is not a candidate of the last round ({len(parents_by_round[r])} candidates)")
    chain = [(r, i)]
    while r > 0 and parents_by_round[r][i]:
        r, i = r - 1, parents_by_round[r][i][0]
        if not 0 <= i < len(parents_by_round[r]):
            raise ValueError(f"parent {i} is not a candidate of round {r} ({len(parents_by_round[r])} candidates)")
        chain.append((r, i))
    return chain[::-1]


def descent_frames(chain: torch.Tensor, between: int) -> torch.Tensor:
    """The frames of an animation along a line of descent: ``chain`` (K, D), ancestors oldest first, becomes
    (K + (K - 1)·between, D): each ancestor followed by ``between`` slerp in-betweens toward the next (both ends
    excluded), the last ancestor last. K = 1 returns ``chain`` itself."""
    if chain.ndim != 2 or len(chain) < 1:
        raise ValueError(f"chain must have shape (K, D) with K >= 1; got {tuple(chain.shape)}")
    if between < 0:
        raise ValueError(f"between must be >= 0; got {between}")
    if len(chain) == 1:
        return chain
    ts = torch.linspace(0, 1, between + 2, dtype=chain.dtype)[1:-1]  # (between,), ends excluded
    frames = []
    for a, b in zip(chain[:-1], chain[1:]):
        frames.append(a.unsqueeze(0))  # (1, D)
        if between:
            frames.append(slerp(a, b, ts))  # (between, D)
    frames.append(chain[-1:])
    return torch.cat(frames)  # (K + (K - 1)·between, D)


__all__ = ["OPS", "BreedConfig", "Child", "NoVotes", "breed", "descent_frames", "first_round", "line_of_descent",
           "mutation_size", "rank_parents", "round_generator", "session_winner"]
