"""One provenance record, three renderings: the embed's fields, the footer and the stored params agree."""

from __future__ import annotations

import discord

from bot import render
from bot.provenance import Provenance


def _image() -> Provenance:
    prov = Provenance("image", "dcgan", "dcgan/v0005", "42", seed=99)
    prov.add("theme", "animals", label="f_theme").add("theme_index", 2)
    prov.add("seed", 99, label="f_seed", stored=False).add("lineage", "11.4.2_99.4")
    prov.add("parents", "11·V3", label="f_parents", inline=False, footer=False, stored=False)
    prov.add("parent_cell", 2, footer=False)
    return prov


def test_each_entry_is_rendered_where_it_says():
    prov = _image()
    meta = render.parse_footer(prov.footer())
    assert meta == {"kind": "image", "theme": "animals", "theme_index": "2", "seed": "99", "lineage": "11.4.2_99.4",
                    "model": "dcgan/v0005", "by": "42"}
    assert prov.params() == {"theme": "animals", "theme_index": 2, "lineage": "11.4.2_99.4", "parent_cell": 2}
    embed = prov.fields(discord.Embed(), "en-US")
    names = [(f.name, f.value, f.inline) for f in embed.fields]
    # the inline fields in the order added, the model version after them, the wide ones last
    assert names == [("Theme", "animals", True), ("Seed", "99", True), ("Model", "dcgan/v0005", True),
                     ("Parents", "11·V3", False)]


def test_a_value_stored_under_its_older_name_and_shown_as_text():
    prov = Provenance("poem", "textvae-en", "textvae-en/v0004", "7", seed=5)
    prov.add("temperature", 0.9, label="f_temperature", shown="0.9").add("parent", 12, label="f_parents",
                                                                           stored_as="parent_seed")
    assert prov.params() == {"temperature": 0.9, "parent_seed": 12}
    assert render.parse_footer(prov.footer())["parent"] == "12"
    zh = {f.name: f.value for f in prov.fields(discord.Embed(), "zh-CN").fields}
    assert zh["温度"] == "0.9" and zh["模型"] == "textvae-en/v0004"
