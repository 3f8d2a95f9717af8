"""The web pages' words: every key in both languages, every key the templates use defined, and the browser's
language chosen as a browser means it."""

from __future__ import annotations

import re
from pathlib import Path

import web
from web.i18n import EN, ZH, STRINGS, language_of, text

TEMPLATES = Path(web.__file__).parent / "templates"


def test_every_key_has_both_languages_with_the_same_placeholders():
    for key, entry in STRINGS.items():
        assert set(entry) == {EN, ZH}, key
        assert set(re.findall(r"{(\w+)}", entry[EN])) == set(re.findall(r"{(\w+)}", entry[ZH])), key


def test_every_key_the_templates_name_is_defined():
    used = set()
    for path in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""t\("([a-z_0-9-]+)["+]""", path.read_text(encoding="utf-8")))
    prefixes = {k for k in used if k.endswith("_")}  # t("kind_" + ...): some key starts so
    assert all(any(s.startswith(p) for s in STRINGS) for p in prefixes)
    assert used - prefixes <= set(STRINGS), sorted(used - prefixes - set(STRINGS))


def test_the_browser_s_language_picks_the_pages_language():
    assert language_of("zh-CN,zh;q=0.9,en;q=0.8") == ZH
    assert language_of("en-US,en;q=0.9,zh-CN;q=0.8") == EN
    assert language_of("fr-FR,fr;q=0.9,zh;q=0.5") == ZH  # the first language Muse speaks
    assert language_of("fr") == language_of("") == language_of(None) == EN
    assert language_of("zh-Hans-CN") == ZH


def test_singular_and_plural():
    assert text(EN, "results", n=1) == "1 result" and text(EN, "results", n=3) == "3 results"
    assert text(ZH, "results", n=3) == "3 个作品"
