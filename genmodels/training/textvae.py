"""Train the poem models of one language: tokenizer, the text VAE (``textvae-{lang}``) and its language-model
baseline with the same decoder (``textlm-{lang}``).

Recipe (see ``docs/MODELS.md`` for the measurements behind it):

- word-level (en) / character-level (zh) tokenizer trained on the train split;
- the LM baseline: the VAE's decoder without z, dropout, early-stopped on dev NLL;
- the VAE: word dropout on the decoder input, cyclical KL annealing (Fu et al. 2019) whose first ramp starts at
  beta = 0 (an autoencoder warm start, Li et al. 2019), and a KL threshold on the batch's total KL ("free bits"
  on the whole latent rather than per dimension, which an early probe on these corpora found to inflate active
  units); early-stopped on the dev ELBO, counting only evaluations where beta = 1;
- held-out metrics (``eval_text.text_metrics``) go into both model cards.

A version can be continued (``init_from``), and polished (``polish``): its VAE alone trains on at beta = 1 with
a decaying learning rate, against the LM baseline it already names.

Each phase is resumable through ``common.run_loop``: kill the process, run the same call again, it continues.
Each run folder is keyed by the data hash and its phase's recipe, so new data or a new recipe starts afresh
(and a VAE-only change keeps the finished LM).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from .. import checkpoints
from ..paths import version_root
from ..poetry import PoemModel, sampling_for
from ..data import DataError
from ..data.poems import build_poem_dataset, load_poem_dataset
from ..data.tokenizer import TOKENIZER_FILE, lines_to_tensor, load_tokenizer, save_tokenizer, train_tokenizer
from ..eval_text import IW_K, add_readability, text_metrics
from ..nets.textvae import TextVAE, TextVAEConfig
from . import common


@dataclass
class TextRecipe:
    batch: int = 64
    lr: float = 1e-3
    grad_clip: float = 5.0
    vae_steps: int = 3600
    lm_steps: int = 3000
    eval_every: int = 200
    patience: int = 6  # evaluations without dev improvement before stopping
    word_dropout: float = 0.3
    kl_target: float = 18.0  # nats per line: the batch's total KL is not penalised below this
    cycles: int = 3  # cyclical annealing: beta ramps 0 -> 1 over the first `ramp` of each cycle
    ramp: float = 0.5
    min_frequency: int = 2
    bow_weight: float = 0.0  # weight of the bag-of-words loss (needs TextVAEConfig.bow_dim > 0)
    vocab_size: int = 0  # > 0: the tokenizer keeps only the most frequent tokens (the rest read as [UNK])
    dev_lines: int = 4000  # the fixed sample of dev lines each evaluation scores (`PoemDataset.lines(limit=...)`)
    lr_decay: bool = False  # cosine decay of the learning rate from `lr` to zero over the phase (a polish run)


def version_recipe(card: dict, lang: str) -> TextRecipe:
    """The objective a text VAE version was trained with: its card's word dropout, KL threshold and bag-of-words
    weight (`muse train textvae --kl-target` changes the threshold), else the language's recipe. A fine-tune or a
    polish keeps to it, so it does not pull the KL towards another version's threshold."""
    own = {k: v for k, v in card.get("recipe", {}).items() if k in ("word_dropout", "kl_target", "bow_weight")}
    return replace(RECIPES[lang][1], **own)


def polish_recipe(recipe: TextRecipe) -> TextRecipe:
    """The recipe of ``muse train textvae --polish``: the VAE of a version that has been through its annealing
    continues at beta = 1 (``ramp`` 0: no cycle restarts, which would throw its posterior away and spend a third
    of the run re-learning it) while the learning rate decays to zero."""
    return replace(recipe, ramp=0.0, cycles=1, lr_decay=True)


RECIPES = {
    # The shipped recipes, for the big corpora (`muse prepare poems`; measurements in docs/MODELS.md). The corpora
    # hold 2.3M (en) and 1.9M (zh) training lines, far more than a CPU run reads once, so dropout is light and
    # the vocabulary is capped: the output layer over the vocabulary is most of a step's work. A bag-of-words
    # loss keeps z carrying the line's content (recon F1), and the KL threshold is set below the earlier
    # small-corpus recipes', so that more of each line is the decoder's language model.
    "en": (TextVAEConfig(vocab_size=0, enc_hidden=256, dec_hidden=512, dropout=0.1, max_len=24, bow_dim=256),
           TextRecipe(lm_steps=2500, vae_steps=4000, kl_target=15.0, bow_weight=0.5, vocab_size=16000)),
    "zh": (TextVAEConfig(vocab_size=0, enc_hidden=256, dec_hidden=512, dropout=0.1, max_len=12, pos_embed=True,
                         bow_dim=256),
           TextRecipe(lm_steps=3000, vae_steps=8000, kl_target=24.0, bow_weight=1.0, vocab_size=6000)),
}


def beta_at(step: int, total: int, cycles: int, ramp: float) -> float:
    """Cyclical schedule (Fu et al. 2019): in each of `cycles` equal periods, linear 0 -> 1 over `ramp`, then 1."""
    period = max(1, math.ceil(total / max(1, cycles)))
    tau = (step % period) / period
    return min(1.0, tau / ramp) if ramp > 0 else 1.0


def trim(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    return x[:, : int(lengths.max())]


@torch.no_grad()
def dev_scores(model: TextVAE, x: torch.Tensor, lengths: torch.Tensor, batch: int = 256) -> dict[str, float]:
    """Mean per-line reconstruction NLL, KL and their sum (the negative ELBO) on a split, in eval mode."""
    was = model.training
    model.eval()
    g = torch.Generator().manual_seed(1234)
    rec = kl = 0.0
    for s in range(0, x.shape[0], batch):
        xb, lb = trim(x[s : s + batch], lengths[s : s + batch]), lengths[s : s + batch]
        if model.latent:
            mu, logvar = model.encode(xb, lb)
            eps = torch.randn(mu.shape, generator=g).to(mu.device)
            z = mu + (0.5 * logvar).exp() * eps
            rec -= float(model.log_px_z(xb, lb, z).sum())
            kl += float(model.kl(mu, logvar).sum())
        else:
            rec -= float(model.log_px_z(xb, lb, None).sum())
    model.train(was)
    n = x.shape[0]
    return {"rec": rec / n, "kl": kl / n, "nelbo": (rec + kl) / n}


def _train_phase(
    kind: str,
    model: TextVAE,
    recipe: TextRecipe,
    total_steps: int,
    data: dict[str, tuple[torch.Tensor, torch.Tensor]],
    device: torch.device,
    run_dir: Path,
    resume: bool,
    progress: bool,
    seed: int,
) -> dict[str, Any]:
    """Train the LM (kind 'lm') or the VAE (kind 'vae'); returns bookkeeping and leaves the best weights loaded."""
    done_marker = run_dir / "phase-done.json"
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    gen = torch.Generator().manual_seed(seed)
    xtr, ltr = data["train"]
    xdev, ldev = data["dev"]
    book: dict[str, Any] = {"best": None, "best_score": float("inf"), "best_step": 0, "bad": 0, "history": []}

    def state() -> dict[str, Any]:
        return {
            "model": model.state_dict(),
            "opt": opt.state_dict(),
            "rng": common.rng_state(gen),
            "book": {**book, "history": json.dumps(book["history"])},
        }

    def load_state(s: dict[str, Any]) -> None:
        model.load_state_dict(s["model"])
        opt.load_state_dict(s["opt"])
        common.set_rng_state(s["rng"], gen)
        b = dict(s["book"])
        b["history"] = json.loads(b["history"])
        book.update(b)

    def step(i: int) -> dict[str, float | torch.Tensor]:
        model.train()
        if recipe.lr_decay:  # a function of the step alone, so a resumed run follows the same schedule
            for g in opt.param_groups:
                g["lr"] = recipe.lr * 0.5 * (1.0 + math.cos(math.pi * i / max(1, total_steps)))
        idx = common.batch_indices(xtr.shape[0], recipe.batch, gen, device)
        lb = ltr[idx]
        xb = trim(xtr[idx], lb)
        with common.autocast(device):
            if kind == "lm":
                terms = model.elbo_terms(xb, lb)
                loss = terms["rec"].mean()
                out = {"nll": loss.detach()}
            else:
                beta = beta_at(i, total_steps, recipe.cycles, recipe.ramp)
                terms = model.elbo_terms(xb, lb, word_dropout=recipe.word_dropout)
                rec = terms["rec"].mean()
                kl = terms["kl"].sum(1).mean()
                loss = rec + beta * torch.clamp(kl, min=recipe.kl_target)
                if "bow" in terms:
                    loss = loss + recipe.bow_weight * terms["bow"].mean()
                out = {"rec": rec.detach(), "kl": kl.detach(), "beta": beta}
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        opt.step()
        return out

    def on_eval(i: int) -> dict[str, float]:
        sc = dev_scores(model, xdev, ldev)
        key = "rec" if kind == "lm" else "nelbo"
        entry = {"step": i, **{k: round(v, 4) for k, v in sc.items()}}
        book["history"].append(entry)
        # The VAE is only comparable at beta = 1 (the plateau of a cycle), and not before its first plateau.
        eligible = kind == "lm" or beta_at(i - 1, total_steps, recipe.cycles, recipe.ramp) >= 1.0
        if eligible and sc[key] < book["best_score"]:
            book.update(best=model.state_dict(), best_score=sc[key], best_step=i, bad=0)
            book["best"] = {k: v.detach().clone() for k, v in book["best"].items()}
        elif eligible:
            book["bad"] += 1
        return {f"dev_{key}": sc[key], "stop": int(book["bad"] >= recipe.patience)}

    if resume and done_marker.exists():
        saved = checkpoints.load_resume(run_dir)
        if saved is not None:
            load_state(saved)
            result = json.loads(done_marker.read_text("utf-8"))
        else:
            resume = False
    if not (resume and done_marker.exists()):
        if done_marker.exists():
            done_marker.unlink()
        res = common.run_loop(
            total_steps=total_steps,
            step=step,
            state=state,
            load_state=load_state,
            run_dir=run_dir,
            resume=resume,
            save_every=500,
            desc=f"{kind} {run_dir.name}",
            progress=progress,
            on_eval=on_eval,
            eval_every=max(1, min(recipe.eval_every, total_steps // 4 or 1)),
        )
        if res.interrupted:
            raise KeyboardInterrupt
        result = {"steps": res.steps, "wall_time_s": round(res.wall_time_s, 1), "threads": torch.get_num_threads()}
        checkpoints.write_json(done_marker, result)
    if book["best"] is not None:
        model.load_state_dict(book["best"])
    result.update(best_step=book["best_step"], dev_best=book["best_score"], dev_history=book["history"])
    return result


def _claim(folder: Path, what: Any, resume: bool) -> None:
    """Keep ``folder`` only when resuming the same run (same data and recipe); otherwise start it afresh."""
    key = hashlib.sha256(repr(what).encode()).hexdigest()[:16]
    key_file = folder / "run-key.json"
    if folder.exists():
        same = key_file.exists() and json.loads(key_file.read_text("utf-8")).get("key") == key
        if not (resume and same):
            for p in folder.iterdir():
                if p.is_file():
                    p.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    checkpoints.write_json(key_file, {"key": key})


def _warm_start(lang: str, models_dir: Path, version: int) -> dict[str, Any]:
    """What ``init_from`` continues: ``textvae-{lang}/v{version}`` (from ``models_dir`` when it holds that version,
    else the shipped weights), the LM baseline its card names, and its tokenizer."""
    from ..poetry import baseline_of, load_baseline, load_text_model

    name = f"textvae-{lang}"
    vae, tok, card = load_text_model(name, version_root(name, version, models_dir), version=version)
    base = baseline_of(card)
    if base is None or base[0] != f"textlm-{lang}":
        raise DataError(f"{checkpoints.full_tag(name, version)} names no textlm-{lang} baseline to continue.")
    tags = {"textvae": checkpoints.full_tag(name, version), "textlm": checkpoints.full_tag(*base)}
    return {"vae": vae.float().train(), "lm": load_baseline(card, models_dir).float().train(), "tok": tok,
            "tags": tags, "card": card}


def train(
    lang: str,
    *,
    data_dir: Path,
    runs_dir: Path,
    models_dir: Path,
    device: str = "auto",
    steps: int | None = None,
    resume: bool = True,
    progress: bool = True,
    seed: int = 0,
    eval_k: int | None = None,
    eval_samples: int = 1000,
    init_from: int | None = None,
    kl_target: float | None = None,
    word_dropout: float | None = None,
    polish: bool = False,
) -> Path:
    """Train tokenizer, ``textvae-{lang}`` and ``textlm-{lang}``; return the new VAE version folder.

    ``steps`` caps the steps of each phase (VAE and LM; both may stop earlier on dev). Uses
    ``data_dir/poems-{lang}.json`` (built from the built-in corpus when missing). ``init_from``: a version of
    ``textvae-{lang}`` to continue (``muse train textvae --init-from N``): its tokenizer and architecture are
    kept, the VAE starts from its weights and the LM from its card's baseline, each with a fresh optimizer and
    the recipe's schedule over ``steps``. ``kl_target`` / ``word_dropout``: the VAE's KL threshold / word dropout
    instead of the recipe's (the card records the recipe as run). ``polish`` (with ``init_from``): keep the
    version's LM baseline as it is (no LM phase, no new ``textlm`` version) and train only the VAE, with the
    version's own objective (`version_recipe`) on `polish_recipe`'s schedule.
    """

    if lang not in RECIPES:
        raise DataError(f"Unknown poem language '{lang}'; choose one of: {', '.join(RECIPES)}.")
    if polish and init_from is None:
        raise DataError("Polishing continues a version: say which one (init_from, or --init-from N).")
    dev = common.pick_device(device)
    data_path = Path(data_dir) / f"poems-{lang}.json"
    if not data_path.exists():
        build_poem_dataset(lang, None, Path(data_dir), seed=seed)
    ds = load_poem_dataset(data_path)
    if ds.lang != lang:
        raise DataError(f"{data_path} holds '{ds.lang}' poems, not '{lang}'; rebuild it.")

    base_cfg, recipe = RECIPES[lang]
    warm = None
    if init_from is not None:
        warm = _warm_start(lang, models_dir, init_from)
        base_cfg = replace(warm["vae"].cfg, vocab_size=0)
        if polish:  # the version's own objective, as a fine-tune keeps it
            recipe = version_recipe(warm["card"], lang)
    if kl_target is not None:
        recipe = replace(recipe, kl_target=float(kl_target))
    if word_dropout is not None:
        recipe = replace(recipe, word_dropout=float(word_dropout))
    if polish:
        recipe = polish_recipe(recipe)
    vae_steps = steps if steps is not None else recipe.vae_steps
    lm_steps = steps if steps is not None else recipe.lm_steps
    run_root = Path(runs_dir) / f"text-{lang}"
    shared = (lang, ds.sha256, ds.stats, recipe.min_frequency, seed) + ((warm["tags"],) if warm else ())
    lm_only = {k: v for k, v in asdict(recipe).items()
               if k not in ("vae_steps", "word_dropout", "kl_target", "cycles", "ramp", "bow_weight")}
    lm_cfg = {k: v for k, v in asdict(base_cfg).items() if k != "bow_dim"}
    _claim(run_root, shared, resume)
    if not polish:
        _claim(run_root / "lm", (shared, lm_cfg, lm_only, lm_steps), resume)
    _claim(run_root / "vae", (shared, asdict(base_cfg), asdict(recipe), vae_steps), resume)

    common.seed_all(seed)
    tok_path = run_root / TOKENIZER_FILE
    if warm is not None:
        tok = warm["tok"]
        save_tokenizer(tok, tok_path)
    elif tok_path.exists():
        tok = load_tokenizer(tok_path)
    else:
        tok = train_tokenizer(lang, ds.lines("train"), recipe.min_frequency, recipe.vocab_size)
        save_tokenizer(tok, tok_path)
    cfg = replace(base_cfg, vocab_size=len(tok))
    data = {"train": lines_to_tensor(tok, ds.lines("train"), cfg.max_len),
            "dev": lines_to_tensor(tok, ds.lines("dev", recipe.dev_lines), cfg.max_len)}
    data_dev = {s: (x.to(dev), l.to(dev)) for s, (x, l) in data.items()}  # resident on the device

    torch.manual_seed(seed)
    lm = TextVAE(replace(cfg, latent_dim=0)).to(dev)
    if warm is not None:
        lm.load_state_dict(warm["lm"].state_dict())
    lm_res = None
    if not polish:
        lm_res = _train_phase("lm", lm, recipe, lm_steps, data_dev, dev, run_root / "lm", resume, progress, seed)
    torch.manual_seed(seed + 1)
    vae = TextVAE(cfg).to(dev)
    if warm is not None:
        vae.load_state_dict(warm["vae"].state_dict())
    vae_res = _train_phase("vae", vae, recipe, vae_steps, data_dev, dev, run_root / "vae", resume, progress, seed + 1)

    lm.eval()
    vae.eval()
    train_lines = ds.lines("train")
    t_eval = time.time()  # timed on its own: a resumed phase reports the wall time of the run that trained it
    metrics = text_metrics(vae, lm, tok, ds, lang, k=eval_k or IW_K, n_samples=eval_samples, seed=seed)
    common_card = {
        "lang": lang,
        "data": {"sha256": ds.sha256, "stats": ds.stats, "seed": ds.seed},
        "tokenizer": {"file": TOKENIZER_FILE, "vocab_size": len(tok),
                      "kind": "word-level, lower-cased" if lang == "en" else "character-level",
                      "min_frequency": recipe.min_frequency},
        "recipe": asdict(recipe),
        # PoemModel imposes 5/7-character forms on zh poems only when the training data mostly has them.
        "line_shape": {"share_5or7": round(sum(len(t) in (5, 7) for t in train_lines) / max(1, len(train_lines)), 4)},
        "device": str(dev),
        **({"warm_start": warm["tags"]} if warm is not None else {}),
        "eval_seconds": round(time.time() - t_eval, 1),
    }
    if lm_res is None:  # polished: the VAE keeps the baseline it was continued from
        baseline = warm["tags"]["textlm"]
        common_card["polish"] = True
    else:
        lm_metrics = {k: v for k, v in metrics.items() if k.startswith("lm_")}
        lm_dir = checkpoints.save_version(
            models_dir, f"textlm-{lang}", lm.state_dict(),
            {**common_card, "kind": "textlm", "config": asdict(lm.cfg), "steps": lm_res["steps"],
             "wall_time_s": lm_res["wall_time_s"], "train": lm_res, "metrics": lm_metrics},
        )
        shutil.copy(tok_path, lm_dir / TOKENIZER_FILE)
        baseline = f"textlm-{lang}/{lm_dir.name}"
    vae_dir = checkpoints.save_version(
        models_dir, f"textvae-{lang}", vae.state_dict(),
        {**common_card, "kind": "textvae", "config": asdict(vae.cfg), "steps": vae_res["steps"],
         "wall_time_s": vae_res["wall_time_s"], "train": vae_res, "baseline": baseline,
         "sampling": sampling_for(lang), "metrics": metrics},
    )
    shutil.copy(tok_path, vae_dir / TOKENIZER_FILE)
    # the readability yardsticks read the poems `/poem` writes, so they run on the saved version
    t_eval = time.time()
    poem = PoemModel.load(lang, models_dir, device=str(dev), version=checkpoints.read_card(vae_dir)["version"])
    add_readability(metrics, poem, ds, seed=seed, n_poems=min(200, eval_samples))  # 200 poems at the defaults
    checkpoints.update_card(vae_dir, metrics=metrics, readability_seconds=round(time.time() - t_eval, 1))
    return vae_dir
