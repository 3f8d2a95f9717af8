"""Every server its own taste: two simulated servers with opposite tastes, through the real store, trainer and engine.

Two servers, A and B, each with its own community and its own rater (images: `bench.raters.warm_colours` against
`bench.raters.cool_colours`; poems: `bench.raters.moon_and_night` against `bench.raters.sun_and_day`). Each round,
each server's members request ``per_round`` fresh results through the engine with the key that serves their
server (`Engine.lineages.key_for`: the base until the server has a version of its own), rate them with their
server's rater, and the results and votes are stored with that server's guild id, as the bot stores them. Then
the real trainer fine-tunes each server's lineage on that server's votes only (`Trainer.train(model, server)`: a
delta on the base in its worker process, gated against its parent, promoted into ``engine.lineages``) and the
next round is served by whatever each server is served now.

Per round and server it reports the like-rate under the server's own rater, the like-rate of the same results
under the *other* server's rater, their diversity (as `bench.feedback` measures it: images, recall against
held-out emoji; poems, distinct-2 of the round's poems), the version served and the gate's decision. The targets:
each server's own like-rate rises by at least 25 points from round 0 to the last round, the other rater likes it
no more than at round 0 (5 points of slack), and diversity stays at or above 80% of round 0 in every round.

Run it with ``muse bench taste --json`` (``--kind poem --lang en`` for poems). ``--out DIR`` keeps the models
folder, the store and the progress there, and running the same command again resumes where it stopped (also
with more ``--rounds``); without it everything lives in a temporary folder. The served models are copied first,
so nothing is written next to the shipped weights.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from genmodels import paths, registry

from .feedback import _copy_models, load_rater
from .plot import promotion_dots, rounds_axes

SERVERS = (("A", 1001), ("B", 2002))  # the two simulated servers: name, guild id
RATERS = {
    "image": ("bench.raters:warm_colours", "bench.raters:cool_colours"),
    "poem": ("bench.raters:moon_and_night", "bench.raters:sun_and_day"),
}
PROGRESS = "progress.json"  # under --out: the rows measured so far, read back by a resumed run
GAIN_POINTS, OTHER_SLACK_POINTS, DIVERSITY_SHARE = 25.0, 5.0, 0.8


def _say(text: str) -> None:
    print(f"[taste {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _message_id(guild: int, rnd: int, i: int) -> int:
    return guild * 10_000_000 + rnd * 10_000 + i + 1


async def _sample(kind: str, model: str, lang: str | None, guild: int, rnd: int, n: int, seed: int, engine, store,
                  own: Callable, other: Callable, fnet, data) -> dict:
    """One round of one server: ``n`` results through the key serving ``guild``, recorded in its name and rated
    by its members with ``own``; ``other`` rates the same results for the report only. Idempotent: a result whose
    message is already stored (a resumed round) is not stored again, and a vote is only ever recorded once."""
    from genmodels.feedback.gate import image_metrics, poem_distinct2
    from genmodels.latents import Generation

    key = engine.lineages.key_for(kind, lang, guild)
    served = engine.loaded(key) or await asyncio.to_thread(engine.model, key)
    rng = random.Random(f"taste:{seed}:{guild}:{rnd}")  # the same round draws the same requests when resumed
    likes = other_likes = 0
    poems = []
    for i in range(n):
        s = rng.randrange(2**32)
        member = guild * 1000 + i
        if kind == "image":
            theme = rng.randrange(len(served.themes))
            out = await engine.run(key, "image.grid", theme=theme, style=None, lineage=(Generation(s, 1),),
                                   user=member)
            output, latent, content = out.images[0], out.latents.numpy(), None
            params = {"theme": out.theme, "theme_index": out.theme_index, "count": 1}
        else:
            out = await engine.run(key, "poem.sample", seed=s, lines=4, user=member)
            output, latent, content, params = out.text, out.latents.numpy(), out.text, {"lang": lang}
            poems.append(out.text)
        mid = _message_id(guild, rnd, i)
        if await store.get_result(message_id=mid) is None:
            await store.record_result(kind=kind, model=model, model_version=registry.short_tag(out.version), seed=s,
                                      latent=latent, params=params, content=content, message_id=mid,
                                      channel_id=guild * 10, guild_id=guild, requester_id=member,
                                      lineage=registry.lineage_of(out.version))
        vote, theirs = own(output), other(output)
        if vote is not None:
            await store.add_reaction(mid, member, vote)  # the member who asked votes on what they got
        likes += vote == "👍"
        other_likes += theirs == "👍"
    if kind == "image":
        diversity = (await asyncio.to_thread(image_metrics, served, fnet, data))["recall"]
    else:
        diversity = poem_distinct2(poems, lang)
    return {"round": rnd, "key": key, "version": served.version, "like_rate_own": likes / n,
            "like_rate_other": other_likes / n, "likes_own": likes, "likes_other": other_likes,
            "diversity": diversity}


def _load_progress(folder: Path | None, config: dict) -> dict:
    if folder is None or not (folder / PROGRESS).is_file():
        return {"config": config, "rows": {name: [] for name, _ in SERVERS}, "seconds": 0.0}
    doc = json.loads((folder / PROGRESS).read_text(encoding="utf-8"))
    if doc.get("config") != config:
        raise ValueError(f"{folder} holds a taste run with other settings ({doc.get('config')}); use another --out")
    return doc


def _save_progress(folder: Path | None, doc: dict) -> None:
    if folder is None:
        return
    tmp = folder / f".{PROGRESS}.tmp"
    tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    os.replace(tmp, folder / PROGRESS)


async def _run(kind: str, lang: str | None, raters: tuple, rounds: int, per_round: int, seed: int, root: str | None,
               threads: int, steps: int | None, data_dir: Path, folder: Path, resume: bool,
               tolerance: float | None, batch: int | None) -> dict:
    from genmodels.engine import Engine, EngineConfig
    from genmodels.feedback.store import FeedbackStore
    from genmodels.feedback.trainer import Trainer, TrainerConfig

    model = registry.model_for(kind, lang).name
    rate = [r if callable(r) else load_rater(r) for r in raters]
    names = [r if isinstance(r, str) else f"{r.__module__}:{r.__qualname__}" for r in raters]
    config = {"kind": kind, "lang": lang, "per_round": per_round, "seed": seed, "raters": names, "steps": steps,
              "tolerance": tolerance, "batch": batch}
    progress = _load_progress(folder if resume else None, config)
    models = folder / "models"
    if not models.is_dir():
        _copy_models([model, "features"] if kind == "image" else [model], models, root)
    fnet = data = None
    if kind == "image":
        from genmodels.data.emoji import build_emoji_dataset, load_image_dataset
        from genmodels.eval_images import load_feature_net

        if not (data_dir / "images.npz").exists():  # as the trainer does: the Noto set, from the Debian font
            _say(f"building {data_dir / 'images.npz'} from the Debian emoji font")
            build_emoji_dataset(data_dir / "images.npz")
        data = load_image_dataset(data_dir / "images.npz")
        fnet, _ = load_feature_net(str(models))
    t_start = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:  # everything opened is closed on every path
        engine = Engine(EngineConfig(models_dir=str(models), threads=threads))
        stack.push_async_callback(engine.close)
        await engine.start()
        store = await FeedbackStore.open(folder / "muse.sqlite3")
        stack.push_async_callback(store.close)
        cfg = TrainerConfig(min_feedback=10**9, every_hours=0, per_user_cap=16, threads=threads,
                            data_dir=str(data_dir))
        if steps is not None:
            cfg.finetune.steps = cfg.finetune.text_steps = steps
        if tolerance is not None:
            cfg.tolerance = tolerance
        if batch is not None:
            cfg.finetune.batch = batch
        trainer = Trainer(store, engine, cfg)
        stack.push_async_callback(trainer.close)
        await trainer.start()  # a resumed run: each server is served the version the store records
        for r in range(rounds + 1):
            for s, (name, guild) in enumerate(SERVERS):
                rows = progress["rows"][name]
                if len(rows) <= r:
                    t0 = time.monotonic()
                    row = await _sample(kind, model, lang, guild, r, per_round, seed, engine, store, rate[s],
                                        rate[1 - s], fnet, data)
                    row["sample_seconds"] = round(time.monotonic() - t0, 1)
                    rows.append(row)
                    _save_progress(folder if resume else None, progress)
                    _say(f"round {r} server {name}: {row['version']} own {row['like_rate_own']:.3f} other "
                         f"{row['like_rate_other']:.3f} diversity {row['diversity']:.3f}")
            if r == rounds:
                break
            for name, guild in SERVERS:
                row = progress["rows"][name][r]
                if "gate" in row:
                    continue
                t0 = time.monotonic()
                res = await trainer.train(model, guild, trigger="bench")
                row.update(gate=res.outcome, candidate=res.version, gate_reason=res.reason,
                           served_after=res.served, feedback_used=res.feedback_used,
                           train_seconds=round(time.monotonic() - t0, 1))
                _save_progress(folder if resume else None, progress)
                _say(f"round {r} server {name}: {res.outcome} {res.version} ({res.reason[:160]})")
        served = {name: engine.lineages.key_for(kind, lang, guild) for name, guild in SERVERS}
        lineage_files = {name: sorted(p.name for p in (models / "servers" / str(guild) / model).glob("v*.safetensors"))
                         if (models / "servers" / str(guild) / model).is_dir() else [] for name, guild in SERVERS}
    progress["seconds"] = round(progress.get("seconds", 0.0) + time.monotonic() - t_start, 1)
    _save_progress(folder if resume else None, progress)
    return _summary(kind, model, lang, names, rounds, per_round, seed, progress, served, lineage_files)


def _summary(kind, model, lang, raters, rounds, per_round, seed, progress, served, lineage_files) -> dict:
    servers, targets = {}, {}
    for s, (name, guild) in enumerate(SERVERS):
        rows = progress["rows"][name][:rounds + 1]
        first, last = rows[0], rows[-1]
        own = round(100 * (last["like_rate_own"] - first["like_rate_own"]), 1)
        other = round(100 * (last["like_rate_other"] - first["like_rate_other"]), 1)
        div = [r["diversity"] / first["diversity"] if first["diversity"] else 0.0 for r in rows]
        gates = [r.get("gate") for r in rows if r.get("gate")]
        servers[name] = {
            "guild_id": guild, "rater": raters[s], "other_rater": raters[1 - s], "served": served[name],
            "lineage_files": lineage_files[name], "per_round_results": rows,
            "own_like_rate_gain_points": own, "other_like_rate_change_points": other,
            "diversity_ratio_last": round(div[-1], 3), "diversity_ratio_min": round(min(div), 3),
            "gate": {o: gates.count(o) for o in sorted(set(gates))},
        }
        targets[name] = {
            "own_rater_gain>=25pts": {"value": own, "pass": own >= GAIN_POINTS},
            "other_rater<=round0+5pts": {"value": other, "pass": other <= OTHER_SLACK_POINTS},
            "diversity>=80%_of_round0": {"value": round(min(div), 3), "pass": min(div) >= DIVERSITY_SHARE},
        }
    refused = {n: v["gate"].get("refused", 0) for n, v in servers.items()}
    notes = [f"server {n}: the gate refused {k} of {rounds} candidates (that round's served version stayed)"
             for n, k in refused.items() if k]
    notes += [f"server {n}: {k} of {rounds} fine-tunes failed" for n, v in servers.items()
              if (k := v["gate"].get("failed", 0))]
    return {
        "benchmark": "taste", "kind": kind, "model": model, "lang": lang, "rounds": rounds, "per_round": per_round,
        "seed": seed, "servers": servers, "targets": targets,
        "all_targets_pass": all(t["pass"] for ts in targets.values() for t in ts.values()),
        "distinct_lineages": served["A"] != served["B"] and all(":" in k for k in served.values()),
        "notes": notes, "seconds": progress.get("seconds"),
    }


def run(kind: str = "image", rounds: int = 5, per_round: int = 64, *, lang: str = "en", seed: int = 0,
        models: str | None = None, threads: int = 1, steps: int | None = None, data: str | None = None,
        out: str | None = None, plot: str | None = None, raters: tuple | None = None,
        tolerance: float | None = None, batch: int | None = None) -> dict:
    """The taste benchmark (see the module's docstring). ``out``: keep everything there and resume from it;
    ``plot``: draw the like-rates per round into this PNG; ``raters``: (A's, B's), each ``module:function`` or a
    function; ``tolerance`` and ``batch``: the gate's tolerance and the fine-tune's batch (the tests' tiny models)."""
    if kind not in RATERS:
        raise ValueError("--kind is image or poem.")
    if rounds < 1 or per_round < 1:
        raise ValueError("--rounds and --per-round must be at least 1.")
    poem_lang = lang if kind == "poem" else None
    data_dir = Path(data or paths.data_dir())
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(_run(kind, poem_lang, tuple(raters or RATERS[kind]), rounds, per_round, seed, models,
                                  threads, steps, data_dir, folder, True, tolerance, batch))
    else:
        with tempfile.TemporaryDirectory(prefix="muse-bench-taste-") as tmp:
            result = asyncio.run(_run(kind, poem_lang, tuple(raters or RATERS[kind]), rounds, per_round, seed,
                                      models, threads, steps, data_dir, Path(tmp), False, tolerance, batch))
    if plot:
        draw(result, plot)
        result["plot"] = plot
    return result


# ---- the plot (Pillow only) --------------------------------------------------------------------------------------

W, H, PAD = 640, 400, 56
SERVER_COLOURS = {"A": (214, 84, 38), "B": (40, 110, 190)}


def _dashed(d, pts, fill, width=2, dash=7):
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        length = max(1.0, ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5)
        steps = int(length // dash)
        for k in range(0, steps + 1, 2):
            a, b = k * dash / length, min(1.0, (k + 1) * dash / length)
            d.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)], fill=fill,
                   width=width)


def draw(result: dict, path: str) -> None:
    """Both servers' like-rates per round, under their own rater (solid) and under the other server's (dashed);
    a filled dot marks a round whose fine-tune was promoted."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(im)
    x, y = rounds_axes(d, (W, H), PAD, result["rounds"])
    d.text((PAD, H - 22), "round (after r fine-tunes)", fill=(80, 80, 80))
    d.text((10, PAD - 14), "like-rate", fill=(80, 80, 80))
    d.text((W - PAD - 250, H - 22), "filled dot: that round's candidate was promoted", fill=(80, 80, 80))
    d.text((PAD, 6), f"muse bench taste: {result['kind']}{'-' + result['lang'] if result['lang'] else ''}, "
                     f"two servers, {result['per_round']} results per server per round", fill=(0, 0, 0))
    for k, (name, srv) in enumerate(result["servers"].items()):
        colour = SERVER_COLOURS[name]
        rows = srv["per_round_results"]
        own = [(x(r["round"]), y(r["like_rate_own"])) for r in rows]
        other = [(x(r["round"]), y(r["like_rate_other"])) for r in rows]
        d.line(own, fill=colour, width=3)
        _dashed(d, other, colour)
        promotion_dots(d, own, rows, colour)
        short = lambda s: s.split(":")[-1]  # noqa: E731
        d.text((PAD + 4 + 290 * k, 22), f"server {name}: liked by its own {short(srv['rater'])} (solid)",
               fill=colour)
        d.text((PAD + 4 + 290 * k, 35), f"   and by {short(srv['other_rater'])} (dashed)", fill=colour)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


__all__ = ["RATERS", "SERVERS", "draw", "run"]
