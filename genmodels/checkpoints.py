"""Checkpoints: safetensors weights plus a JSON model card, versioned on disk.

Muse never unpickles a checkpoint (the one pickle it reads is a third-party corpus file, through the allow-list
unpickler of `genmodels.data.gutenberg`). Weights are safetensors; everything else (configs, metrics, optimizer
hyper-parameters, RNG bookkeeping) is JSON. Anything that is not a well-formed safetensors file, or whose
bytes do not match the SHA-256 recorded in its card, is refused with a `CheckpointError` whose message says
what to do.

On-disk layout of a model family (``name`` is e.g. ``dcgan``, ``vae``, ``textvae-en``)::

    <root>/<name>/v0001/model.safetensors   # the weights (fp16 for shipped models)
    <root>/<name>/v0001/card.json           # the model card: config, data hash, steps, wall time, metrics
    <root>/<name>/v0002/...

Which version a loader picks
----------------------------
Asked for a version, `load_version` loads exactly that one or raises. Asked for none, it serves the newest
version that is *servable* and *intact*, newest first:

* **Servable** (`servable`): a card without a ``gate`` field (a model trained from scratch or shipped) is
  servable. A fine-tune candidate is written with ``"gate": {"passed": null}`` before it is evaluated, and only
  the gate's verdict ``"passed": true`` makes it servable; a refused (``false``) or never-judged (``null``)
  candidate is passed over. A version taken out of service (`withdraw`, e.g. by a rollback) carries a
  ``withdrawn`` field and is passed over too.
* **Intact**: its card parses, its weights are well-formed safetensors and match the card's SHA-256. A version
  that is not is skipped with a WARNING naming the file, and the next older one is served.

So neither a refused candidate nor a corrupt copy ever becomes the default, whether or not a trainer pins the
served version. `paths.find_model` applies the same rule across the model roots.

A training run keeps its resumable state apart from the versions::

    <run_dir>/resume.safetensors            # model + optimizer tensors
    <run_dir>/resume.json                   # step counter, non-tensor optimizer state, config
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

log = logging.getLogger("muse.checkpoints")

MODEL_FILE = "model.safetensors"
CARD_FILE = "card.json"
RESUME_TENSORS = "resume.safetensors"
RESUME_META = "resume.json"

# A safetensors header is a little-endian u64 length followed by that many bytes of JSON. Real headers are
# kilobytes; anything claiming more than this is a corrupt or hostile file.
_MAX_HEADER = 100 * 1024 * 1024


class CheckpointError(RuntimeError):
    """A checkpoint could not be read or written. The message is meant for the user."""


# --------------------------------------------------------------------------------------------------------
# Plain safetensors files
# --------------------------------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write_bytes(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    data = json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False).encode("utf-8") + b"\n"

    def _write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    _atomic_write_bytes(Path(path), _write)


def save_weights(path: str | os.PathLike, tensors: dict[str, torch.Tensor], half: bool = False,
                 meta: dict[str, str] | None = None) -> None:
    """Save tensors as safetensors, atomically. ``half`` stores floating tensors as fp16; ``meta``: string metadata
    for the header."""
    out = {}
    for k, v in tensors.items():
        v = v.detach().to("cpu")
        if half and v.is_floating_point():
            v = v.to(torch.float16)
        out[k] = v.contiguous()
    _atomic_write_bytes(Path(path), lambda tmp: save_file(out, tmp, metadata=meta))


def _sniff(path: Path) -> None:
    """Refuse files that are not safetensors before handing them to a parser, with a message that helps."""
    if not path.exists():
        raise CheckpointError(f"No checkpoint at {path}.")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(16)
    looks_safetensors = len(head) >= 9 and head[8:9] == b"{"  # a header length, then its JSON
    # A pickle starts with the PROTO opcode 0x80 then its protocol (2-5), a torch zip with PK; a safetensors
    # header length may begin with 0x80 too (a 9,600-byte header is 80 25 00 ...), so that alone proves nothing.
    if head[:4] == b"PK\x03\x04" or (head[:1] == b"\x80" and head[1:2] in b"\x02\x03\x04\x05"
                                      and not looks_safetensors):
        raise CheckpointError(
            f"{path} looks like a PyTorch pickle (.pt/.pth/.bin). Muse loads only safetensors files, because "
            "unpickling a file can run arbitrary code. Convert it on a machine you trust with "
            "`safetensors.torch.save_file(torch.load(path, weights_only=True), 'model.safetensors')`."
        )
    if size < 8:
        raise CheckpointError(f"{path} is truncated ({size} bytes); re-copy it or retrain.")
    (n,) = struct.unpack("<Q", head[:8])
    if n > _MAX_HEADER or 8 + n > size or head[8:9] != b"{":
        raise CheckpointError(
            f"{path} is not a valid safetensors file (corrupt or truncated header); re-copy it or retrain."
        )


def load_weights(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Load a safetensors file, refusing pickles and corrupt or truncated files with a `CheckpointError`."""
    path = Path(path)
    _sniff(path)
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} could not be read as safetensors ({e}); re-copy it or retrain.") from e


def save_weights_with_meta(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict[str, str],
                           half: bool = False) -> None:
    """`save_weights` with string metadata in the safetensors header: a file that carries its own card (a per-server
    delta, `genmodels.deltas`), for stores where one small file per item beats a folder per item."""
    save_weights(path, tensors, half, meta)


def load_weights_with_meta(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and the header metadata of a file written by `save_weights_with_meta` (checked like
    `load_weights`)."""
    from safetensors import safe_open

    path = Path(path)
    tensors = load_weights(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} could not be read as safetensors ({e}); re-copy it or retrain.") from e
    return tensors, meta


# --------------------------------------------------------------------------------------------------------
# Versioned models with cards
# --------------------------------------------------------------------------------------------------------


def tag(version: int) -> str:
    """A version number as its folder and store tag: 7 → ``v0007``."""
    return f"v{int(version):04d}"


def parse_tag(version: str | int) -> int:
    """The number in a tag: ``v0007``, ``dcgan/v0007`` (a model's ``version`` attribute) or ``7`` → 7."""
    return int(str(version).rsplit("/", 1)[-1].lstrip("v"))


def short_tag(version: str) -> str:
    """``dcgan/v0001`` (a model's ``version``, shown in embeds) → ``v0001`` (the store's and the trainer's, where
    the model is a column of its own); any other text is returned as it is."""
    return str(version).rsplit("/", 1)[-1]


def full_tag(name: str, version: int) -> str:
    """``dcgan/v0001``: the ``version`` attribute of a loaded model, carried by every output it makes."""
    return f"{name}/{tag(version)}"


def load_into(module: torch.nn.Module, tensors: dict[str, torch.Tensor], name: str, *, prefix: str = "",
              skip: tuple[str, ...] = ()) -> torch.nn.Module:
    """Load a version's tensors into ``module`` (float32): only the keys under ``prefix`` (stripped), less those
    starting with one of ``skip``. A file whose tensors do not fit the module raises `CheckpointError`."""
    state = {k[len(prefix):]: v.float() for k, v in tensors.items()
             if k.startswith(prefix) and not (skip and k.startswith(skip))}
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"The {name} checkpoint does not fit the model: {e}") from e
    return module


def list_versions(root: str | os.PathLike, name: str) -> list[int]:
    base = Path(root) / name
    if not base.is_dir():
        return []
    out = []
    for p in base.iterdir():
        if p.is_dir() and p.name.startswith("v") and p.name[1:].isdigit() and (p / CARD_FILE).exists():
            out.append(int(p.name[1:]))
    return sorted(out)


def version_dir(root: str | os.PathLike, name: str, version: int) -> Path:
    return Path(root) / name / tag(version)


def utcnow() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def save_version(
    root: str | os.PathLike,
    name: str,
    tensors: dict[str, torch.Tensor],
    card: dict[str, Any],
    *,
    half: bool = True,
    version: int | None = None,
) -> Path:
    """Write the next version of ``name`` under ``root`` and return its folder.

    The card gets ``name``, ``version``, ``created`` and the weights' ``sha256`` added. The card is written
    last, so a version folder without a card (an interrupted save) is ignored by `list_versions`.
    """
    if version is None:
        existing = list_versions(root, name)
        version = (existing[-1] + 1) if existing else 1
    vdir = version_dir(root, name, version)
    vdir.mkdir(parents=True, exist_ok=True)
    weights = vdir / MODEL_FILE
    save_weights(weights, tensors, half=half)
    full_card = {"name": name, "version": version, "created": utcnow(), **card, "sha256": sha256_file(weights)}
    write_json(vdir / CARD_FILE, full_card)
    return vdir


def read_card(vdir: str | os.PathLike) -> dict[str, Any]:
    p = Path(vdir) / CARD_FILE
    try:
        return json.loads(p.read_text("utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"No model card at {p}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"The model card {p} is corrupt ({e}).") from e


def update_card(vdir: str | os.PathLike, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into a version's card (e.g. metrics measured after training); the weights are untouched."""
    card = read_card(vdir)
    card.update(fields)
    write_json(Path(vdir) / CARD_FILE, card)
    return card


def servable(card: dict[str, Any]) -> bool:
    """Whether a loader may pick this version when no version is asked for (see the module docstring).

    No ``gate`` field: servable (trained from scratch, shipped). A ``gate`` field: servable only when the gate
    passed it (``"passed": true``); pending (``null``) and refused (``false``) are not. A ``withdrawn`` field
    (set by `withdraw`) always makes a version unservable.
    """
    if card.get("withdrawn"):
        return False
    if "gate" not in card:
        return True
    gate = card["gate"]
    return isinstance(gate, dict) and gate.get("passed") is True


def _why_not_servable(card: dict[str, Any]) -> str:
    withdrawn = card.get("withdrawn")
    if withdrawn:
        reason = withdrawn.get("reason") if isinstance(withdrawn, dict) else None
        return f"withdrawn ({reason})" if reason else "withdrawn"
    passed = card["gate"].get("passed") if isinstance(card.get("gate"), dict) else None
    return "refused by the gate" if passed is False else "not yet judged by the gate"


def withdraw(vdir: str | os.PathLike, reason: str) -> dict[str, Any]:
    """Take a version out of service: loaders never pick it by default again (an explicit request still works)."""
    return update_card(vdir, withdrawn={"reason": reason, "at": utcnow()})


def check_version(root: str | os.PathLike, name: str, version: int) -> dict[str, Any]:
    """The card of ``name`` at ``version`` once its weights are checked: well-formed safetensors whose SHA-256
    matches the card. Raises `CheckpointError` otherwise (the message names the file)."""
    vdir = version_dir(root, name, version)
    card = read_card(vdir)
    weights = vdir / MODEL_FILE
    _sniff(weights)
    expected = card.get("sha256")
    if expected and sha256_file(weights) != expected:
        raise CheckpointError(
            f"{weights} does not match the checksum in its model card: the file is corrupt or was replaced. "
            "Re-copy it, roll back to another version, or retrain."
        )
    return card


@dataclass(frozen=True)
class Skipped:
    """A version passed over when picking the default: not servable, or ``corrupt`` (unreadable files)."""

    name: str
    version: int
    why: str
    corrupt: bool

    def log(self) -> None:
        """A corrupt version is a WARNING (someone should re-copy it); a refused one is routine (DEBUG)."""
        log.log(logging.WARNING if self.corrupt else logging.DEBUG, "skipping %s v%04d: %s",
                self.name, self.version, self.why)

    def __str__(self) -> str:
        return f"{tag(self.version)}: {self.why}"


def _by_default(root: str | os.PathLike, name: str) -> Iterator[tuple[int, dict[str, Any] | None, Skipped | None]]:
    """Every version of ``name`` under ``root``, newest first: (version, its checked card, None) when it may be
    served by default, else (version, None, why it is passed over)."""
    for v in reversed(list_versions(root, name)):
        try:
            card = read_card(version_dir(root, name, v))
        except CheckpointError as e:
            yield v, None, Skipped(name, v, str(e), corrupt=True)
            continue
        if not servable(card):
            yield v, None, Skipped(name, v, _why_not_servable(card), corrupt=False)
            continue
        try:
            yield v, check_version(root, name, v), None
        except CheckpointError as e:
            yield v, None, Skipped(name, v, str(e), corrupt=True)


def default_version(root: str | os.PathLike, name: str) -> tuple[int | None, list[Skipped]]:
    """The version of ``name`` under ``root`` that `load_version` serves when none is asked for (None when no
    version qualifies), and the newer ones it passes over. Nothing is logged: the caller decides."""
    skipped = []
    for v, card, why in _by_default(root, name):
        if card is not None:
            return v, skipped
        skipped.append(why)
    return None, skipped


def load_version(
    root: str | os.PathLike, name: str, version: int | None = None, device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load (tensors, card) of ``name`` at ``version``, checking the SHA-256.

    ``version`` None: the newest version that is servable and intact (see the module docstring); corrupt ones
    on the way are skipped with a WARNING naming the file. An explicit ``version`` loads exactly that one,
    servable or not, or raises `CheckpointError`.
    """
    versions = list_versions(root, name)
    if not versions:
        raise CheckpointError(f"No trained '{name}' model under {root}. Train one with `muse train`.")
    if version is not None:
        if version not in versions:
            raise CheckpointError(f"'{name}' has no version {version}; available: {versions}.")
        card = check_version(root, name, version)
        return load_weights(version_dir(root, name, version) / MODEL_FILE, device=device), card
    skipped = []
    for v, card, why in _by_default(root, name):
        if card is not None:
            try:  # header and checksum are fine, but a file whose card records no checksum may be cut short
                return load_weights(version_dir(root, name, v) / MODEL_FILE, device=device), card
            except CheckpointError as e:
                why = Skipped(name, v, str(e), corrupt=True)
        why.log()
        skipped.append(why)
    raise CheckpointError(
        f"No usable '{name}' model under {root} ({'; '.join(map(str, skipped))}). Re-copy the weights, roll back "
        "to another version, or retrain with `muse train`."
    )


# --------------------------------------------------------------------------------------------------------
# Resumable training state: nested dicts of tensors and plain values, split into safetensors + JSON
# --------------------------------------------------------------------------------------------------------


def flatten_state(obj: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested structure into (tensors keyed by path, a JSON-able skeleton referencing them)."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(o: Any, path: str) -> Any:
        if isinstance(o, torch.Tensor):
            tensors[path] = o.detach().cpu().contiguous()
            return {"__tensor__": path}
        if isinstance(o, dict):
            return {"__dict__": [[walk(k, f"{path}.k{i}"), walk(v, f"{path}.{i}")] for i, (k, v) in enumerate(o.items())]}
        if isinstance(o, (list, tuple)):
            return {"__list__": [walk(v, f"{path}.{i}") for i, v in enumerate(o)], "tuple": isinstance(o, tuple)}
        if o is None or isinstance(o, (bool, int, float, str)):
            return o
        raise TypeError(f"cannot store {type(o).__name__} at {path} in a checkpoint")

    return tensors, walk(obj, prefix or "s")


def unflatten_state(tensors: dict[str, torch.Tensor], skeleton: Any) -> Any:
    def walk(o: Any) -> Any:
        if isinstance(o, dict):
            if "__tensor__" in o:
                return tensors[o["__tensor__"]]
            if "__dict__" in o:
                return {walk(k): walk(v) for k, v in o["__dict__"]}
            if "__list__" in o:
                items = [walk(v) for v in o["__list__"]]
                return tuple(items) if o.get("tuple") else items
        return o

    return walk(skeleton)


def save_resume(run_dir: str | os.PathLike, state: dict[str, Any]) -> None:
    """Save a resumable training state (models, optimizers, counters) without pickle."""
    run_dir = Path(run_dir)
    tensors, skeleton = flatten_state(state)
    save_weights(run_dir / RESUME_TENSORS, tensors)
    write_json(run_dir / RESUME_META, {"saved": utcnow(), "state": skeleton})


def load_resume(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The state saved by `save_resume`, or None when the run has none."""
    run_dir = Path(run_dir)
    meta = run_dir / RESUME_META
    if not meta.exists():
        return None
    try:
        skeleton = json.loads(meta.read_text("utf-8"))["state"]
    except (json.JSONDecodeError, KeyError) as e:
        raise CheckpointError(f"{meta} is corrupt ({e}); delete {run_dir} or pass --fresh.") from e
    tensors = load_weights(run_dir / RESUME_TENSORS)
    return unflatten_state(tensors, skeleton)


def clear_resume(run_dir: str | os.PathLike) -> None:
    for f in (RESUME_TENSORS, RESUME_META):
        p = Path(run_dir) / f
        if p.exists():
            p.unlink()


def iter_cards(root: str | os.PathLike, names: Iterable[str]) -> Iterable[dict[str, Any]]:
    for name in names:
        for v in list_versions(root, name):
            yield read_card(version_dir(root, name, v))
