"""Tiny text VAEs saved as real versions (untrained weights, a tokenizer fitted on a few lines), so that tests load
them through the same code paths as the shipped ones."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch


def save_text_model(root: Path, lang: str, lines: list[str], max_len: int = 10) -> Path:
    """Save ``textvae-{lang}`` under ``root`` (a models folder); returns the version's folder."""
    from genmodels import checkpoints
    from genmodels.data.tokenizer import save_tokenizer, train_tokenizer
    from genmodels.nets.textvae import TextVAE, TextVAEConfig

    tok = train_tokenizer(lang, lines, min_frequency=1)
    torch.manual_seed(0)
    cfg = TextVAEConfig(vocab_size=tok.backend_tokenizer.get_vocab_size(), embed_dim=16, enc_hidden=12,
                        dec_hidden=20, latent_dim=8, max_len=max_len)
    vdir = checkpoints.save_version(root, f"textvae-{lang}", TextVAE(cfg).state_dict(),
                                    {"config": dataclasses.asdict(cfg), "steps": 0})
    save_tokenizer(tok, vdir)
    return vdir


def save_text_models(root: Path, en: list[str], zh: list[str], max_len: int = 10) -> Path:
    """Both languages' tiny text VAEs under ``root``, fitted on ``en`` and ``zh``; returns ``root``."""
    for lang, lines in (("en", en), ("zh", zh)):
        save_text_model(root, lang, lines, max_len)
    return root
