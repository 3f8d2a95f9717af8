"""Fixtures for the offline end-to-end bot tests.

- ``bot_models``: the tiny dcgan + vae trained by ``tests/conftest.py`` (``tiny_models``), plus tiny English and
  Chinese text VAEs saved as real versions next to them (untrained weights, a tokenizer fitted on a few lines),
  so the bot loads everything through the same code paths as in production.
- The helpers (a fake Discord on loopback with a logged-in bot) are in ``museharness.py``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

EN_LINES = [f"the {a} and the {b} of night" for a in ("moon", "sea", "star", "wind") for b in ("rain", "river", "stone")]
EN_LINES += [f"I saw the {a} upon the {b}" for a in ("bird", "rose", "snow") for b in ("hill", "sea", "moon")]
ZH_LINES = ["床前明月光", "疑是地上霜", "举头望明月", "低头思故乡", "白日依山尽", "黄河入海流", "欲穷千里目", "更上一层楼"]


def _save_text_model(root: Path, lang: str, lines: list[str]) -> None:
    from genmodels import checkpoints
    from genmodels.data.tokenizer import save_tokenizer, train_tokenizer
    from genmodels.nets.textvae import TextVAE, TextVAEConfig

    tok = train_tokenizer(lang, lines, min_frequency=1)
    torch.manual_seed(0)
    cfg = TextVAEConfig(vocab_size=tok.backend_tokenizer.get_vocab_size(), embed_dim=16, enc_hidden=12,
                        dec_hidden=20, latent_dim=8, max_len=10)
    model = TextVAE(cfg)
    vdir = checkpoints.save_version(root, f"textvae-{lang}", model.state_dict(),
                                    {"config": dataclasses.asdict(cfg), "steps": 0})
    save_tokenizer(tok, vdir)


@pytest.fixture(scope="session")
def bot_models(tiny_models: Path) -> Path:
    _save_text_model(tiny_models, "en", EN_LINES)
    _save_text_model(tiny_models, "zh", ZH_LINES)
    return tiny_models
