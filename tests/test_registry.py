"""The model registry: one name per model, the engine's older keys as aliases, version tags."""

import pytest

from genmodels import registry
from genmodels.images import ImageGenerator, Morpher


def test_names_kinds_and_aliases():
    assert registry.NAMES == ("dcgan", "vae", "textvae-en", "textvae-zh")
    for old, name in {"image": "dcgan", "morph": "vae", "poem-en": "textvae-en", "poem-zh": "textvae-zh"}.items():
        assert registry.get(old) is registry.get(name) and registry.canonical(old) == name
    assert [m.kind for m in registry.MODELS] == ["image", "morph", "poem", "poem"]
    assert registry.poem_model("zh").lang == "zh" and registry.get("vae").card_dir == "vae"
    assert registry.canonical("features") == "features"
    with pytest.raises(KeyError, match="unknown model"):
        registry.get("gpt")


def test_tags():
    assert registry.tag(7) == "v0007" and registry.full_tag("vae", 7) == "vae/v0007"
    assert registry.parse_tag("v0007") == registry.parse_tag("vae/v0007") == 7
    assert registry.short_tag("vae/v0007") == "v0007" and registry.short_tag("—") == "—"


def test_load_by_name_or_alias(tiny_models):
    assert isinstance(registry.load("image", tiny_models), ImageGenerator)
    m = registry.load("vae", tiny_models, version=1)
    assert isinstance(m, Morpher) and m.version == "vae/v0001"
