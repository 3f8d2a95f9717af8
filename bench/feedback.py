"""Does Muse really learn from reactions? A simulated community, through the real store, trainer and engine.

Each round generates ``per_round`` fresh results through the engine (images: one random theme and seed each;
morphs: an image morph between two random emoji of the image dataset, as /interpolate image draws it; poems: a
random seed each), shows each to the rater, and stores the results and the rater's 👍/👎 in a real SQLite store
as reactions of a community of ``per_round`` members. After rounds 0 .. R-1 the real trainer fine-tunes on
everything stored so far (in its worker process), gates the candidate and promotes or refuses it; the next round
samples from whatever is served. Per round it reports the like-rate of the fresh samples, their diversity
(images: recall against held-out emoji; morphs: the VAE's feature-classifier accuracy on its reconstructions of
held-out emoji, the gate's recognisability metric; poems: distinct-2 of the round's poems) and the gate's
decision.

Run it with ``muse bench feedback --kind image --rater bench.raters:warm_colours --rounds 5 --per-round 64
--json`` (``--kind morph`` with the same rater judges each morph's middle frame). Nothing outside a temporary
folder is written: the models are copied there first.
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

KINDS = ("image", "morph", "poem")
IMAGE_KINDS = ("image", "morph")  # judged on the emoji set with the feature net, which the bench copies too
# The diversity column of each kind, as reported ("diversity_metric"), and for the image kinds the gate's metric
# (`gate.image_metrics`) it reads: the DCGAN's recall of held-out emoji, the VAE's feature-classifier accuracy on its
# reconstructions of them (whether a morph's frames still look like what they are)
DIVERSITY_METRIC = {"image": "recall", "morph": "recon_accuracy", "poem": "distinct2"}
GATE_METRIC = {"image": "recall", "morph": "classifier_accuracy_reconstructions"}
MORPH_FRAMES = 8  # the frames /interpolate image draws by default (bot/ext/interpolate/cog.py)


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


async def _generate(kind: str, model: str, engine, rng: random.Random, i: int, data) -> dict:
    """One fresh result of ``kind`` from the served ``model``, as the bot makes and records it: ``output`` (what
    the rater judges), and the store's ``seed``, ``latent``, ``params``, ``content`` and ``version``."""
    if kind == "image":
        seed, theme = rng.randrange(2**32), rng.randrange(9)
        out = await engine.image(theme, count=1, seed=seed, user=i)
        return {"output": out.images[0], "seed": seed, "latent": out.latents.numpy(), "content": None,
                "params": {"theme": out.theme, "theme_index": out.theme_index, "count": 1}, "version": out.version}
    if kind == "morph":
        from genmodels.operations import ImageEnd

        # two different emoji of the dataset read above (Noto's, or a folder's images), each an emoji end in its own
        # set, as /interpolate image names one (a Noto end is drawn from the emoji font, as for a member)
        a, b = (ImageEnd(str(data.train_chars[j]), emoji=str(data.train_chars[j]),
                         emoji_style=data.style_names[int(data.train_styles[j])])
                for j in rng.sample(range(len(data.train_chars)), 2))
        out = await engine.run(model, "morph.images", a=a, b=b, frames=MORPH_FRAMES, user=i)
        # as bot/ext/interpolate/flows.py records a morph: its ends as the store keeps them, one latent row per frame
        # (the VAE's fine-tune decodes them); a morph has no seed. The rater judges the middle frame.
        params = {"from": {"emoji": a.emoji, "style": a.emoji_style}, "to": {"emoji": b.emoji, "style": b.emoji_style},
                  "frames": MORPH_FRAMES}
        return {"output": out.frames[len(out.frames) // 2], "seed": None, "latent": out.latents.numpy(),
                "content": None, "params": params, "version": out.version}
    seed = rng.randrange(2**32)
    poem = await engine.run(model, "poem.sample", seed=seed, user=i)
    # as the bot records a poem: one latent row per decoded line (the text fine-tune reads the text)
    return {"output": poem.text, "seed": seed, "latent": poem.latents.numpy(), "content": poem.text,
            "params": {"lang": registry.get(model).lang}, "version": poem.version}


async def _round(kind: str, model: str, engine, store, rater, n: int, rng: random.Random, rnd: int,
                 fnet, data) -> dict:
    from genmodels.feedback.gate import image_metrics, poem_distinct2

    served = engine.loaded(model) or await asyncio.to_thread(engine.model, model)  # named as the registry does
    likes = dislikes = 0
    poems = []
    for i in range(n):
        res = await _generate(kind, model, engine, rng, i, data)
        if kind == "poem":
            poems.append(res["output"])
        message_id = rnd * 1_000_000 + i + 1
        await store.record_result(kind=kind, model=model, model_version=registry.short_tag(res["version"]),
                                  seed=res["seed"], latent=res["latent"], params=res["params"],
                                  content=res["content"], message_id=message_id, channel_id=1, guild_id=1,
                                  requester_id=i)
        emoji = rater(res["output"])
        if emoji is not None:
            await store.add_reaction(message_id, 10_000 + i, emoji)  # member i of the community
            likes += emoji == "👍"
            dislikes += emoji == "👎"
    if kind in IMAGE_KINDS:  # the served model on the held-out emoji
        diversity = (await asyncio.to_thread(image_metrics, served, fnet, data))[GATE_METRIC[kind]]
    else:
        diversity = poem_distinct2(poems, registry.get(model).lang)
    return {"round": rnd, "version": served.version, "like_rate": likes / n, "likes": likes, "dislikes": dislikes,
            "diversity": diversity, "diversity_metric": DIVERSITY_METRIC[kind]}


# ---- the delta method (`--delta`): each fine-tune trains a per-server delta on the base (genmodels.deltas) -------

DELTAS_DIR = "deltas"  # under the bench's models folder: deltas/<model>/vNNNN.safetensors, one per candidate


def _delta_path(models_dir, name: str, version: int) -> Path:
    return Path(models_dir) / DELTAS_DIR / name / f"{checkpoints.tag(version)}.safetensors"


def _delta_finetune(fn, spec: dict):
    """``fn`` (a `finetune.*_delta`) with the full fine-tune's signature and result, for `trainer.run_job`: the
    parent version is the base (a shipped version) or a candidate made by an earlier delta round (its card names
    the base and its delta); the delta is trained from the parent's, written beside the versions, and the
    candidate saved is base + delta merged (`deltas.full_tensors`), so the gate and the engine see what a server
    would be served."""
    from genmodels import deltas
    from genmodels.paths import find_model

    def run(parent, items, data, cfg, device, **kw):
        tensors, card = parent
        init = None
        if "delta" in card:  # an earlier round's candidate: continue its delta on the same base
            b = card["delta"]["base"]
            tensors, card = checkpoints.load_version(find_model(b["name"], spec["root"], b["version"]), b["name"],
                                                     b["version"])
            init = deltas.load_delta(_delta_path(spec["models_dir"], spec["model"], spec["parent"]), card)
            if "poem" in kw:
                kw["poem"] = registry.load(spec["model"], spec["root"], b["version"])
        dt, meta = fn((tensors, card), items, data, cfg, device, init=init, **kw)
        delta = deltas.from_parts(dt, meta)
        path = deltas.save_delta(_delta_path(spec["models_dir"], spec["model"], spec["version"]), delta)
        extra = {k: meta[k] for k in ("finetune", "preference") if k in meta}
        extra["delta"] = {"base": delta.base, "config": meta["config"], "bytes": path.stat().st_size,
                          "numbers": delta.n_numbers}
        return deltas.full_tensors(tensors, card, delta), extra

    return run


def run_delta_job(spec: dict) -> dict:
    """`trainer.run_job` with each model's delta fine-tune in place of its full one (in the worker process, so the
    swap stays there)."""
    from genmodels.feedback import finetune, trainer

    finetune.finetune_dcgan = _delta_finetune(finetune.finetune_dcgan_delta, spec)
    finetune.finetune_vae = _delta_finetune(finetune.finetune_vae_delta, spec)
    finetune.finetune_textvae = _delta_finetune(finetune.finetune_textvae_delta, spec)
    return trainer.run_job(spec)


def cold_load(model: str, models_dir, base_version: int, delta_file: Path, repeats: int = 50) -> dict:
    """The base loaded once, then a server's model made ready from cold: read its delta file and apply it. Median
    and p90 over ``repeats`` (milliseconds), and the bytes of the delta against the base's weights."""
    import statistics

    from genmodels import deltas

    base = registry.load(model, str(models_dir), base_version)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        deltas.apply(base, deltas.load_delta(delta_file, base.card))
        times.append(1000 * (time.perf_counter() - t0))
    times.sort()
    base_bytes = (checkpoints.version_dir(models_dir, model, base_version) / checkpoints.MODEL_FILE).stat().st_size
    size = delta_file.stat().st_size
    return {"cold_load_ms_median": round(statistics.median(times), 2),
            "cold_load_ms_p90": round(times[int(0.9 * (len(times) - 1))], 2), "repeats": repeats,
            "delta_bytes": size, "base_bytes": base_bytes, "delta_share_of_base": round(size / base_bytes, 4)}


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
               threads: int, steps: int | None, sheet: str | None = None, delta: bool = False) -> dict:
    from genmodels.data.emoji import load_image_dataset
    from genmodels.engine import Engine, EngineConfig
    from genmodels.eval_images import load_feature_net
    from genmodels.feedback.store import FeedbackStore
    from genmodels.feedback.trainer import TasteConfig, Trainer, TrainerConfig

    model = registry.model_for(kind, lang).name  # dcgan, vae, textvae-<lang>
    rng = random.Random(seed)
    # Everything opened here is closed on every path (an AsyncExitStack): a store or trainer left open keeps
    # aiosqlite's thread or the worker process alive, and the interpreter would never exit after an error.
    with tempfile.TemporaryDirectory(prefix="muse-bench-feedback-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            models = Path(tmp) / "models"
            _copy_models([model, "features"] if kind in IMAGE_KINDS else [model], models, root)
            fnet = data = None
            if kind in IMAGE_KINDS:  # the data first: a missing dataset needs nothing closed
                data = load_image_dataset(paths.data_dir() / "images.npz")
                fnet, _ = load_feature_net(str(models))
            engine = Engine(EngineConfig(models_dir=str(models), threads=threads))
            stack.push_async_callback(engine.close)
            await engine.start()
            store = await FeedbackStore.open(Path(tmp) / "muse.sqlite3")
            stack.push_async_callback(store.close)
            # The community is one server (guild 1) and the bench fine-tunes the base: the base learns from that
            # server's votes only when its owner shares them with the base ([taste] share_with_base), else from DMs.
            cfg = TrainerConfig(min_feedback=10**9, every_hours=0, per_user_cap=16, threads=threads,
                                data_dir=str(paths.data_dir()), taste=TasteConfig(share_with_base=True))
            if steps is not None:
                cfg.finetune.steps = cfg.finetune.text_steps = steps
            if delta:
                class _DeltaTrainer(Trainer):
                    job = staticmethod(run_delta_job)

                trainer = _DeltaTrainer(store, engine, cfg)
            else:
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
                    row.update(gate=res.outcome, candidate=res.version, gate_reason=res.reason,
                               feedback_used=res.feedback_used)
                row["seconds"] = round(time.monotonic() - t0, 1)
                out.append(row)
            if sheet is not None and before is not None:
                _before_after(before, engine.loaded(model), sheet)
            delta_info = None
            files = sorted((models / DELTAS_DIR / model).glob("v*.safetensors")) if delta else []
            if files:  # the last delta made, loaded from cold on its base
                base_v = checkpoints.parse_tag(out[0]["version"])
                delta_info = await asyncio.to_thread(cold_load, model, models, base_v, files[-1])
                delta_info["file"] = files[-1].name
    first, last = out[0], out[-1]
    return {
        "benchmark": "feedback", "kind": kind, "model": model, "rounds": rounds, "per_round": per_round,
        "seed": seed, "method": "delta" if delta else "full", "delta": delta_info, "per_round_results": out,
        "like_rate_gain_points": round(100 * (last["like_rate"] - first["like_rate"]), 1),
        "diversity_ratio": round(last["diversity"] / first["diversity"], 3) if first["diversity"] else None,
        "targets": {"like_rate_gain>=25pts": last["like_rate"] - first["like_rate"] >= 0.25,
                    "diversity>=80%": bool(first["diversity"]) and last["diversity"] >= 0.8 * first["diversity"]},
    }


def run(kind: str, rater: str, rounds: int = 5, per_round: int = 64, *, lang: str = "en", seed: int = 0,
        models: str | None = None, threads: int = 1, steps: int | None = None, sheet: str | None = None,
        method: str = "full") -> dict:
    """``method``: "full" (each fine-tune a full new version), "delta" (a per-server delta on the base, served
    merged) or "both": the two, one after the other, with the same raters, rounds and seed, side by side."""
    if kind not in KINDS:
        raise ValueError("--kind is image, morph or poem.")
    if rounds < 1 or per_round < 1:
        raise ValueError("--rounds and --per-round must be at least 1.")
    if method not in ("full", "delta", "both"):
        raise ValueError("--method is full, delta or both.")
    if method == "both":
        full = run(kind, rater, rounds, per_round, lang=lang, seed=seed, models=models, threads=threads, steps=steps,
                   method="full")
        delta = run(kind, rater, rounds, per_round, lang=lang, seed=seed, models=models, threads=threads,
                    steps=steps, method="delta")
        return side_by_side(full, delta)
    result = asyncio.run(_run(kind, load_rater(rater), rounds, per_round, lang, seed, models, threads, steps, sheet,
                              delta=method == "delta"))
    result["rater"] = rater
    return result


def side_by_side(full: dict, delta: dict) -> dict:
    """Two runs of the same bench (full and delta), and the delta's lift as a share of the full one's."""
    gf, gd = full["like_rate_gain_points"], delta["like_rate_gain_points"]
    return {"benchmark": "feedback-side-by-side", "kind": full["kind"], "model": full["model"],
            "rounds": full["rounds"], "per_round": full["per_round"], "seed": full["seed"],
            "like_rate_gain_points": {"full": gf, "delta": gd},
            "lift_ratio": round(gd / gf, 3) if gf > 0 else None,
            "diversity_ratio": {"full": full["diversity_ratio"], "delta": delta["diversity_ratio"]},
            "delta": delta["delta"], "targets": {"lift>=80%_of_full": gf > 0 and gd >= 0.8 * gf},
            "full_run": full, "delta_run": delta}
