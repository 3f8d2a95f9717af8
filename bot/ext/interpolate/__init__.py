"""Interpolate: /interpolate image and poem, the 🌀 button, the morph form and its context menu."""

from __future__ import annotations

from .cog import Interpolate, morph_from_here
from .views import MODAL_TEMPLATE, ImageMorph, MorphModal


async def setup(bot) -> None:
    await bot.add_cog(Interpolate(bot))
    bot.tree.add_command(morph_from_here)
    bot.add_dynamic_items(ImageMorph)
    bot.add_modal_route(MODAL_TEMPLATE, MorphModal.submitted)
