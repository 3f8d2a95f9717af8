"""The benchmarks' part of the `muse` command line; each prints its figures (JSON with ``--json``).

    muse bench train [--steps N] [--device auto|cpu|cuda]        the training loops' throughput
    muse bench feedback [--kind image|morph|poem] [--rater MODULE:FN]  a simulated community fine-tuning a model
    muse bench serve [--requests N] [--count N] [--servers N --lru N]  /image through discord.py and a fake Discord
    muse bench session [--kind image|poem] [--lang en|zh] [--voters N] [--burst N] [--rounds N] [--candidates N]
                                                                  a group session voted through to its winner
    muse bench poem [--lang en|zh] [--poems N] [--form F] [--threads N]  seconds per /poem, and how its lines parse
    muse bench taste [--kind image|poem] [--rounds N] [--per-round N] [--out DIR] [--plot PNG]
    muse bench web [--results N] [--loads N]                      a server's gallery in chromium: first paint
                                                                  two servers with opposite tastes, two lineages

`add_commands` adds ``bench`` to the sub-commands of a `muse` parser (see `genmodels.cli.build_parser`); the
package declares it as a ``muse.commands`` entry point, which is how `bot.cli` finds it without importing
``bench``. ``python -m bench.cli`` runs the library's commands and ``bench``, without the Discord side.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from genmodels import cli as core_cli


def cmd_bench(args) -> int:
    if args.what == "feedback":
        from .feedback import run as bench_feedback

        if args.data:
            os.environ["MUSE_DATA_DIR"] = args.data
        rounds = 5 if args.rounds is None else args.rounds
        result = bench_feedback(args.kind, args.rater, rounds, args.per_round, lang=args.lang, seed=args.seed,
                                models=args.models, threads=args.threads, steps=args.steps, sheet=args.sheet,
                                method=args.method)
    elif args.what == "taste":
        from .taste import run as bench_taste

        rounds = 5 if args.rounds is None else args.rounds
        result = bench_taste(args.kind, rounds, args.per_round, lang=args.lang, seed=args.seed, models=args.models,
                             threads=args.threads, steps=args.steps, data=args.data, out=args.out, plot=args.plot)
    elif args.what == "web":
        from .web import run as bench_web

        result = bench_web(results=args.results, loads=args.loads, models=args.models)
    elif args.what == "poem":
        from .poem import run as bench_poem

        result = bench_poem(lang=args.lang, count=args.poems, seed=args.seed, form=args.form, threads=args.threads,
                            models=args.models, data=args.data)
    elif args.what == "serve":
        from .serve import run as bench_serve

        result = bench_serve(requests=args.requests, count=args.count, models=args.models, servers=args.servers,
                             lru=args.lru)
    elif args.what == "session":
        from .session import run as bench_session

        rounds = 3 if args.rounds is None else args.rounds
        result = bench_session(kind=args.kind, lang=args.lang, voters=args.voters, rounds=rounds,
                               candidates=args.candidates, models=args.models, seed=args.seed,
                               sample=args.sample, burst=args.burst)
    else:
        from genmodels import paths

        from .train import run as bench_train

        result = bench_train(steps=args.steps or 30, device=args.device,
                             data_path=Path(args.data or paths.data_dir()) / "images.npz")
    print(json.dumps(result, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


def add_commands(sub) -> None:
    """Add ``bench train|feedback|serve|session|poem|taste|web`` to ``sub`` (what
    ``ArgumentParser.add_subparsers()`` returned)."""
    sp = sub.add_parser("bench", help="benchmarks that print JSON")
    sp.add_argument("what", choices=["train", "feedback", "serve", "session", "poem", "taste", "web"])
    sp.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    sp.add_argument("--steps", type=int, help="train: timed steps per loop (30); feedback: fine-tune steps")
    sp.add_argument("--device", default="auto", help="train: auto (CUDA if present), cpu or cuda")
    sp.add_argument("--data", help="train, feedback: dataset folder (default: $MUSE_DATA_DIR or ./data)")
    sp.add_argument("--models", help="models folder (default: $MUSE_MODELS_DIR, then the shipped weights)")
    sp.add_argument("--kind", choices=["image", "morph", "poem"], default="image",
                    help="feedback: what the community rates (image, morph: an image morph of the VAE, or poem); "
                         "session: what the session breeds (image or poem)")
    sp.add_argument("--rater", default="bench.raters:warm_colours", help="feedback: MODULE:FUNCTION, the taste")
    sp.add_argument("--rounds", type=int, help="feedback: fine-tune rounds (5); session: rounds of the session (3)")
    sp.add_argument("--per-round", type=int, default=64, help="feedback: results rated per round")
    sp.add_argument("--lang", choices=core_cli.LANGS, default="en", help="feedback, session: poem language")
    sp.add_argument("--seed", type=int, default=0,
                    help="feedback, session: seed of the simulated community (session: also the session's seed)")
    sp.add_argument("--threads", type=int, default=1, help="feedback: torch threads (engine and trainer)")
    sp.add_argument("--sheet", help="feedback --kind image: write a before/after sample sheet (PNG) here")
    sp.add_argument("--method", choices=["full", "delta", "both"], default="full",
                    help="feedback: full fine-tunes, per-server deltas on the base (genmodels.deltas), or both side by side")
    sp.add_argument("--sample", help="session: write what was posted (round grids, messages, the GIF) to this folder")
    sp.add_argument("--requests", type=int, default=64, help="serve: concurrent /image interactions")
    sp.add_argument("--count", type=int, default=4, help="serve: images per request")
    sp.add_argument("--servers", type=int, default=0,
                    help="serve: the requests come from this many servers, each with its own delta (0: one model)")
    sp.add_argument("--lru", type=int, default=16, help="serve --servers: server models kept loaded")
    sp.add_argument("--voters", type=int, default=50, help="session: simulated members voting in each round")
    sp.add_argument("--candidates", type=int, default=9, help="session: candidates per round (4-9)")
    sp.add_argument("--burst", type=int, default=0, help="session: voters pressing at once (0: all of them)")
    sp.add_argument("--poems", type=int, default=20, help="poem: poems written, one after another")
    sp.add_argument("--form", help="poem: a verse form (quatrain, couplet, haiku; zh: jueju, lushi)")
    sp.add_argument("--results", type=int, default=48, help="web: pictures on the gallery page")
    sp.add_argument("--loads", type=int, default=5, help="web: gallery loads (the first draws the pictures)")
    sp.add_argument("--out", help="taste: keep the models, the store and the progress here (run again to resume)")
    sp.add_argument("--plot", help="taste: draw both servers' like-rates per round into this PNG")
    sp.set_defaults(func=cmd_bench)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("MUSE_LOG_LEVEL", "WARNING"))
    return core_cli.run_cli(core_cli.build_parser(extensions=(add_commands,)), argv)


if __name__ == "__main__":
    sys.exit(main())
