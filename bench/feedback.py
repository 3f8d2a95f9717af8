"""Does Muse really learn from reactions? A simulated community, through the real store, trainer and engine.

Each round generates ``per_round`` fresh results through the engine (images: one random theme and seed each;
poems: a random seed each), shows each to the rater, and stores the results and the rater's 👍/👎 in a real SQLite
store as reactions of a community of ``per_round`` members. After rounds 0 .. R-1 the real trainer fine-tunes
on everything stored so far (in its worker process), gates the candidate and promotes or refuses it; the next
round samples from whatever is served. Per round it reports the like-rate of the fresh samples, their diversity
(images: recall against held-out emoji; poems: distinct-2 of the round's poems) and the gate's decision.

Run it with ``muse bench feedback --kind image --rater bench.raters:warm_colours --rounds 5 --per-round 64
--json``. Nothing outside a temporary folder is written: the models are copied there first.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from PIL import Image

from genmodels import checkpoints, paths, registry


def load_rater(spec: str) -> Callable:
    """``module:function`` -> the function (any importable one)."""
    mod, sep, fn = spec.partition(":")
    if not sep or not mod or not fn:
        raise ValueError(f"--rater takes MODULE:FUNCTION, for example bench.raters:warm_colours (got '{spec}').")
    try:
        rater = getattr(importlib.import_module(mod), fn)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"Cannot load the rater '{spec}': {e}") from e
    if not callable(rater):
        raise ValueError(f"The rater '{spec}' is not a function.")
    return rater


def _copy_models(names: list[str], dest: Path, root: str | None) -> None:
    """Copy the served version of each of ``names``, and the LM baseline a text VAE's card names (a version that
    ranks its lines loads it), into the models folder ``dest``."""
    from genmodels.paths import version_root
    from genmodels.poetry import baseline_of

    for name in names:
        src, v = paths.resolve_model(name, root)  # the version a loader serves, never a refused candidate
        shutil.copytree(checkpoints.version_dir(src, name, v), checkpoints.version_dir(dest, name, v))
        base = baseline_of(checkpoints.read_card(checkpoints.version_dir(src, name, v)))
        if base is not None:
            shutil.copytree(checkpoints.version_dir(version_root(*base, root), *base),
                            checkpoints.version_dir(dest, *base))


async def _round(kind: str, model: str, engine, store, rater, n: int, rng: random.Random, rnd: int,
                 fnet, data) -> dict:
    from genmodels.feedback.gate import image_metrics, poem_distinct2

    key = model  # the engine names models as the registry does
    served = engine.loaded(key) or await asyncio.to_thread(engine.model, key)
    likes = dislikes = 0
    poems = []
    for i in range(n):
        seed = rng.randrange(2**32)
        if kind == "image":
            theme = rng.randrange(9)
            out = await engine.image(theme, count=1, seed=seed, user=i)
            output, latent, content = out.images[0], out.latents.numpy(), None
            params, version = {"theme": out.theme, "theme_index": out.theme_index, "count": 1}, out.version
        else:
            poem = await engine.run(key, "poem.sample", seed=seed, user=i)
            text, version = poem.text, poem.version
            # as the bot records a poem: one latent row per decoded line (the text fine-tune reads the text)
            output, latent, content, params = text, poem.latents.numpy(), text, {"lang": registry.get(model).lang}
            poems.append(text)
        message_id = rnd * 1_000_000 + i + 1
        await store.record_result(kind=kind, model=model, model_version=registry.short_tag(version),
                                        seed=seed, latent=latent, params=params, content=content,
                                        message_id=message_id, channel_id=1, guild_id=1, requester_id=i)
        emoji = rater(output)
        if emoji is not None:
            await store.add_reaction(message_id, 10_000 + i, emoji)  # member i of the community
            likes += emoji == "👍"
            dislikes += emoji == "👎"
    if kind == "image":
        diversity = (await asyncio.to_thread(image_metrics, served, fnet, data))["recall"]
    else:
        diversity = poem_distinct2(poems, registry.get(model).lang)
    return {"round": rnd, "version": served.version, "like_rate": likes / n, "likes": likes, "dislikes": dislikes,
            "diversity": diversity, "diversity_metric": "recall" if kind == "image" else "distinct2"}


def _before_after(before, after, path: str) -> None:
    """Two 9×4 grids, the same themes and seeds (one theme per row), from the first and the last served model."""
    from genmodels.images import grid

    def sheet(gen):
        return grid([im for t in range(9) for im in gen.generate(t, count=4, seed=1000 + t).images], cols=4, scale=2,
                    pad=4)

    a, b = sheet(before), sheet(after)
    out = Image.new("RGBA", (a.width + b.width + 24, a.height), (228, 228, 228, 255))
    out.alpha_composite(a, (0, 0))
    out.alpha_composite(b, (a.width + 24, 0))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    out.save(path)


async def _run(kind: str, rater, rounds: int, per_round: int, lang: str, seed: int, root: str | None,
               threads: int, steps: int | None, sheet: str | None = None) -> dict:
    from genmodels.data.emoji import load_image_dataset
    from genmodels.engine import Engine, EngineConfig
    from genmodels.eval_images import load_feature_net
    from genmodels.feedback.store import FeedbackStore
    from genmodels.feedback.trainer import Trainer, TrainerConfig

    model = registry.model_for("image").name if kind == "image" else registry.model_for("poem", lang).name
    rng = random.Random(seed)
    # Everything opened here is closed on every path (an AsyncExitStack): a store or trainer left open keeps
    # aiosqlite's thread or the worker process alive, and the interpreter would never exit after an error.
    with tempfile.TemporaryDirectory(prefix="muse-bench-feedback-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            models = Path(tmp) / "models"
            _copy_models([model, "features"] if kind == "image" else [model], models, root)
            fnet = data = None
            if kind == "image":  # the data first: a missing dataset needs nothing closed
                data = load_image_dataset(paths.data_dir() / "images.npz")
                fnet, _ = load_feature_net(str(models))
            engine = Engine(EngineConfig(models_dir=str(models), threads=threads))
            stack.push_async_callback(engine.close)
            await engine.start()
            store = await FeedbackStore.open(Path(tmp) / "muse.sqlite3")
            stack.push_async_callback(store.close)
            cfg = TrainerConfig(min_feedback=10**9, every_hours=0, per_user_cap=16, threads=threads,
                                data_dir=str(paths.data_dir()))
            if steps is not None:
                cfg.finetune.steps = cfg.finetune.text_steps = steps
            trainer = Trainer(store, engine, cfg)
            stack.push_async_callback(trainer.close)
            await trainer.start()
            out = []
            before = await asyncio.to_thread(engine.model, model) if kind == "image" else None
            for r in range(rounds + 1):
                t0 = time.monotonic()
                row = await _round(kind, model, engine, store, rater, per_round, rng, r, fnet, data)
                if r < rounds:
                    res = await trainer.train(model, trigger="bench")
                    row.update(gate=res.outcome, candidate=res.version, gate_reason=res.reason)
                row["seconds"] = round(time.monotonic() - t0, 1)
                out.append(row)
            if sheet is not None and before is not None:
                _before_after(before, engine.loaded(model), sheet)
    first, last = out[0], out[-1]
    return {
        "benchmark": "feedback", "kind": kind, "model": model, "rounds": rounds, "per_round": per_round,
        "seed": seed, "per_round_results": out,
        "like_rate_gain_points": round(100 * (last["like_rate"] - first["like_rate"]), 1),
        "diversity_ratio": round(last["diversity"] / first["diversity"], 3) if first["diversity"] else None,
        "targets": {"like_rate_gain>=25pts": last["like_rate"] - first["like_rate"] >= 0.25,
                    "diversity>=80%": bool(first["diversity"]) and last["diversity"] >= 0.8 * first["diversity"]},
    }


def run(kind: str, rater: str, rounds: int = 5, per_round: int = 64, *, lang: str = "en", seed: int = 0,
        models: str | None = None, threads: int = 1, steps: int | None = None, sheet: str | None = None) -> dict:
    if kind not in ("image", "poem"):
        raise ValueError("--kind is image or poem.")
    if rounds < 1 or per_round < 1:
        raise ValueError("--rounds and --per-round must be at least 1.")
    result = asyncio.run(_run(kind, load_rater(rater), rounds, per_round, lang, seed, models, threads, steps, sheet))
    result["rater"] = rater
    return result
