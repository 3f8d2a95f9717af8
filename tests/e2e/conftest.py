"""Fixtures for the offline end-to-end bot tests.

- ``bot_models``: the tiny dcgan + vae trained by ``tests/conftest.py`` (``tiny_models``), plus tiny English and
  Chinese text VAEs saved as real versions next to them (untrained weights, a tokenizer fitted on a few lines),
  so the bot loads everything through the same code paths as in production.
- The helpers (a fake Discord on loopback with a logged-in bot) are in ``museharness.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from textmodels import save_text_model

torch.set_num_threads(1)

EN_LINES = [f"the {a} and the {b} of night" for a in ("moon", "sea", "star", "wind") for b in ("rain", "river", "stone")]
EN_LINES += [f"I saw the {a} upon the {b}" for a in ("bird", "rose", "snow") for b in ("hill", "sea", "moon")]
ZH_LINES = ["床前明月光", "疑是地上霜", "举头望明月", "低头思故乡", "白日依山尽", "黄河入海流", "欲穷千里目", "更上一层楼"]


@pytest.fixture(scope="session")
def bot_models(tiny_models: Path) -> Path:
    save_text_model(tiny_models, "en", EN_LINES)
    save_text_model(tiny_models, "zh", ZH_LINES)
    return tiny_models


@pytest.fixture(scope="session")
def styled_bot_models(styled_models: Path) -> Path:
    """`bot_models` whose newest dcgan draws two styles (see `styled_models`)."""
    save_text_model(styled_models, "en", EN_LINES)
    save_text_model(styled_models, "zh", ZH_LINES)
    return styled_models
