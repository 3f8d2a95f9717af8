"""One fine-tune of one server's lineage, as the trainer's worker process runs it (`run_delta_job`).

The server's votes train a small delta (`genmodels.deltas`) on the base its lineage grows from: the base version
served when the lineage began, for as long as the lineage lives (so every version of one server compares with its
parent on the same base). The candidate is gated as a full version is (`gate.decide`, against its parent and
against the base) and written, judged, to ``<models dir>/servers/<server>/<model>/vNNNN.safetensors``: the file
appears only once the verdict is in it (written to a temporary name, then renamed), so no half-made delta is
ever on disk under a version's name. Whether a version is served is the store's to say, never the file's.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import checkpoints, deltas, lineage, paths, registry
from ..registry import tag


def _save_judged(path: Path, delta: deltas.Delta) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        deltas.save_delta(tmp, delta)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def run_delta_job(spec: dict) -> dict:
    """Fine-tune server ``spec['server']``'s lineage of ``spec['model']`` from its version ``spec['parent']``
    (None: from the base ``spec['base']``), gate the candidate and save it as version ``spec['version']``.
    Returns what `genmodels.feedback.trainer.run_job` returns: {"version", "passed", "reason", "metrics",
    "parent_metrics", "preference", "warning"}."""
    import torch

    from ..data.emoji import build_emoji_dataset
    from ..data.poems import build_poem_dataset, load_poem_dataset
    from . import finetune, gate

    torch.set_num_threads(max(1, int(spec["threads"])))
    model, root, server = spec["model"], spec["root"], int(spec["server"])
    cfg, device, data_dir = spec["finetune"], torch.device(spec["device"]), Path(spec["data_dir"])
    lineage_root = spec["lineage_root"]
    init = None
    if spec["parent"] is not None:
        init = deltas.load_delta(lineage.delta_path(lineage_root, model, server, spec["parent"]))
    base_version = int(init.base["version"]) if init is not None else int(spec["base"])
    tensors, card = checkpoints.load_version(paths.find_model(model, root, base_version), model, base_version)
    base_obj = registry.load(model, root, base_version)
    image_model = registry.get(model).kind in ("image", "morph")

    if image_model:
        data_path = data_dir / "images.npz"
        if not data_path.exists():  # the replay data, built from the Debian emoji font like `muse prepare images`
            build_emoji_dataset(data_path)
        fn = finetune.finetune_dcgan_delta if model == "dcgan" else finetune.finetune_vae_delta
        new_tensors, meta = fn((tensors, card), spec["items"], data_path, cfg, device, init=init)
    else:
        lang = registry.get(model).lang
        path = data_dir / f"poems-{lang}.json"
        if not path.exists():
            build_poem_dataset(lang, None, data_dir)
        ds = load_poem_dataset(path)
        new_tensors, meta = finetune.finetune_textvae_delta((tensors, card), spec["items"], ds, cfg, device,
                                                            poem=base_obj, init=init)
    delta = deltas.from_parts(new_tensors, meta)

    # The candidate as the server would get it, against its parent (the server's model now), on held-out data.
    parent_obj = deltas.apply(base_obj, init) if init is not None else base_obj
    cand = deltas.apply(base_obj, delta)
    kind, m_parent, m_cand = gate.compare(model, parent_obj, cand, root, data_dir, None if image_model else ds)
    # The base this lineage grows from, with its metrics as the lineage's first run measured them.
    base_metrics = (init.card.get("base_metrics") if init is not None else None) or m_parent
    decision = gate.decide(kind, m_cand, m_parent, spec["tolerance"], base_metrics)
    parent_name = (f"{model}:{server}/{tag(spec['parent'])}" if spec["parent"] is not None
                   else f"{model}/{tag(base_version)}")
    delta.card.update(
        server=server, version=int(spec["version"]), parent=parent_name, metrics=m_cand, base_metrics=base_metrics,
        feedback={"items": len(spec["items"]), "trigger": spec["trigger"]},
        gate={"passed": decision.passed, "parent_metrics": m_parent, "tolerance": spec["tolerance"],
              "reasons": decision.reasons})
    _save_judged(lineage.delta_path(lineage_root, model, server, spec["version"]), delta)
    pref = delta.preference()
    return {"version": spec["version"], "passed": decision.passed, "reason": decision.summary(),
            "metrics": m_cand, "parent_metrics": m_parent, "preference": pref.stats if pref else None,
            "warning": None if image_model else finetune.replay_mismatch(card, ds)}


__all__ = ["run_delta_job"]
