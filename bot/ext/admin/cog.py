"""``/muse``: the models and their feedback (administrators), and each member's own stats.

    /muse model status                 per model: served version, versions kept, feedback, last run, like rates
    /muse model train kind:<model>     fine-tune now; reports promoted / refused (the gate's reason) / failed
    /muse model rollback kind:<model>  serve the previous version again
    /muse feedback export              this server's votes and button signals as a CSV file
    /muse stats                        your contribution, and this server's favourite results

The models are shared by every server the bot is in, so ``/muse model`` is for the bot's owner and the
administrators of the home guild (``[discord] home_guild``) only (`bot.checks.models_admin`). ``/muse feedback export``
concerns one server's own votes and is for that server's administrators and the owner (`bot.checks.server_admin`). Both are
``app_commands`` checks; anyone else gets a polite ephemeral refusal before anything runs. Replies are ephemeral. The work is done by the
store (`genmodels.feedback.store`) and the trainer (`genmodels.feedback.trainer`); this file only checks,
formats and replies.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.app_commands import locale_str as _
from discord.ext import commands

from genmodels import registry
from genmodels.feedback.trainer import NothingToRollBack, TrainerError

from ...checks import models_admin, need_store, need_trainer, server_admin
from ...errors import UserError, log_error
from ...i18n import t
from ...recording import version_tag
from ...replies import TOKEN_LIFETIME

if TYPE_CHECKING:
    from ...app import MuseBot

log = logging.getLogger("muse.admin")


MODELS = registry.NAMES


MODEL_CHOICES = [app_commands.Choice(name=m, value=m) for m in MODELS]


EXPORT_GZIP_OVER = 8 * 1024 * 1024  # a bigger CSV is sent gzipped (Discord's smallest upload limit is 10 MB)


def check_model(kind: str) -> str:
    if kind not in MODELS:  # the client offers only the choices; a hand-made payload is not bound by that
        raise UserError("unknown_model", model=kind[:40], models=", ".join(MODELS))
    return kind


async def _begin_model_admin(interaction: discord.Interaction, kind: str):
    """The checks of /muse model train and rollback, then a private "thinking…": (trainer, model, locale)."""
    kind = check_model(kind)
    trainer = need_trainer(interaction)
    await interaction.response.defer(ephemeral=True, thinking=True)
    return trainer, kind, interaction.locale


def _when(ts: float | None) -> str:
    return f"<t:{int(ts)}:R>" if ts else "—"


def _served(bot: "MuseBot", model: str, served: str | None) -> str:
    """The version the store says is served, else the one the engine has loaded (as a tag: v0001)."""
    if served:
        return version_tag(served)
    loaded = bot.engine.loaded(model)
    return version_tag(getattr(loaded, "version", None) or "—")


async def _status_from_store(store) -> list[dict]:
    """What `Trainer.status` returns, from the store alone (when the trainer is off)."""
    out = []
    for model in MODELS:
        out.append({"model": model, "served": await store.served_version(model),
                    "versions": await store.model_versions(model), "last_run": await store.last_run(model),
                    "counts": await store.counts(model), "like_rates": await store.like_rates(model)})
    return out


def _status_field(bot: "MuseBot", loc, row: dict) -> str:
    model = row["model"]
    lines = [t(loc, "status_served", version=_served(bot, model, row.get("served")))]
    versions = [version_tag(str(v.get("version", "?") if isinstance(v, dict) else v))
                + (f" ({v['status']})" if isinstance(v, dict) and v.get("status") not in (None, "served") else "")
                for v in row.get("versions") or []]
    if versions:
        lines.append(t(loc, "status_versions", versions=", ".join(versions[-6:])))
    c = row.get("counts") or {}
    lines.append(t(loc, "status_counts", **{k: c.get(k, 0) for k in ("results", "likes", "dislikes", "voters",
                                                                       "signals")}))
    run = row.get("last_run")
    if run:
        outcome = run.get("outcome", "?")
        detail = run.get("detail") or {}
        # the trainer keeps the gate's summary under "gate", a failure's under "error"
        reason = next((detail[k] for k in ("reason", "gate", "error") if detail.get(k)), None) \
            if isinstance(detail, dict) else None
        lines.append(t(loc, "status_last_run", when=_when(run.get("finished_at") or run.get("started_at")),
                       trigger=run.get("trigger", "?"),
                       outcome=t(loc, f"outcome_{outcome}") if f"outcome_{outcome}" in _OUTCOMES else outcome,
                       reason=f" ({str(reason)[:200]})" if reason else ""))
    else:
        lines.append(t(loc, "status_no_run"))
    rates = [f"{version_tag(ver)} {r['like_rate']:.0%} ({r['likes'] + r['dislikes']})"
             for ver, r in (row.get("like_rates") or {}).items() if r.get("like_rate") is not None]
    lines.append(t(loc, "status_rates", rates=" · ".join(rates[-6:]) if rates else t(loc, "status_no_votes")))
    return "\n".join(lines)[:1024]


_OUTCOMES = {f"outcome_{o}" for o in ("promoted", "refused", "failed", "skipped", "running", "interrupted")}


def _metrics(metrics: dict | None) -> str | None:
    if not metrics:
        return None
    parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
             if not isinstance(v, (dict, list))]
    return ("`" + "  ".join(parts)[:1000] + "`") if parts else None


async def _reply(interaction: discord.Interaction, content: str | None = None, **kw: Any) -> None:
    """The followup of a deferred ephemeral reply; after a very long run (the token expired) a DM instead."""
    expired = discord.utils.utcnow() - interaction.created_at > TOKEN_LIFETIME
    try:
        if not expired:
            await interaction.followup.send(content, ephemeral=True, **kw)
            return
    except discord.HTTPException as e:
        log_error(e, f"answering {interaction.command.qualified_name if interaction.command else '?'}",
                  level=logging.WARNING)
    try:
        await interaction.user.send(content, **kw)
    except discord.HTTPException as e:
        log_error(e, f"sending a result to user {interaction.user.id} by DM", level=logging.WARNING)


class Muse(commands.Cog):
    """The ``/muse`` command group."""

    muse = app_commands.Group(name=_("muse"), description=_("Muse's models, feedback and your stats"))
    model = app_commands.Group(name=_("model"), description=_("The models and their training (admins)"),
                               parent=muse)
    feedback = app_commands.Group(name=_("feedback"), description=_("The votes Muse has recorded (admins)"),
                                  parent=muse)

    def __init__(self, bot: "MuseBot"):
        self.bot = bot

    # ---- models -----------------------------------------------------------------------------------------

    @model.command(name=_("status"), description=_("Versions, feedback and trainer runs of every model (admins)"))
    @models_admin()
    async def model_status(self, interaction: discord.Interaction) -> None:
        trainer = self.bot.trainer
        store = need_store(interaction) if trainer is None else None
        await interaction.response.defer(ephemeral=True, thinking=True)
        rows = await trainer.status() if trainer is not None else await _status_from_store(store)
        loc = interaction.locale
        embed = discord.Embed(title=t(loc, "status_title"), colour=discord.Colour.dark_teal())
        for row in rows:
            embed.add_field(name=row["model"], value=_status_field(self.bot, loc, row), inline=False)
        if trainer is None:
            embed.set_footer(text=t(loc, "trainer_off")[:2048])
        await _reply(interaction, embed=embed)

    @model.command(name=_("train"), description=_("Fine-tune a model on the feedback now (admins)"))
    @app_commands.describe(kind=_("Which model"))
    @app_commands.rename(kind=_("kind"))
    @app_commands.choices(kind=MODEL_CHOICES)
    @models_admin()
    async def model_train(self, interaction: discord.Interaction, kind: str) -> None:
        trainer, kind, loc = await _begin_model_admin(interaction, kind)
        try:
            out = await trainer.train(kind, trigger=f"admin:{interaction.user.id}")
        except TrainerError as e:
            await _reply(interaction, t(loc, "train_error", model=kind, detail=str(e)[:1500]))
            return
        key = (f"train_{out.outcome}" if out.outcome in ("promoted", "refused", "failed", "skipped", "interrupted")
               else "train_failed")
        if out.outcome == "failed" and getattr(out, "stage", None) == "load":  # passed the gate, would not load
            key = "train_unloadable"
        text = t(loc, key, model=out.model, version=out.version or "—", served=out.served or "—",
                 reason=(out.reason or "—")[:1000], n=out.feedback_used)
        embed = None
        metrics = _metrics(out.metrics)
        if metrics:
            embed = discord.Embed(colour=discord.Colour.green() if out.outcome == "promoted"
                                  else discord.Colour.orange())
            embed.add_field(name=t(loc, "f_metrics"), value=metrics, inline=False)
        await _reply(interaction, text, **({"embed": embed} if embed else {}))

    @model.command(name=_("rollback"), description=_("Serve a model's previous version again (admins)"))
    @app_commands.describe(kind=_("Which model"))
    @app_commands.rename(kind=_("kind"))
    @app_commands.choices(kind=MODEL_CHOICES)
    @models_admin()
    async def model_rollback(self, interaction: discord.Interaction, kind: str) -> None:
        trainer, kind, loc = await _begin_model_admin(interaction, kind)
        try:
            version = await trainer.rollback(kind)
        except TrainerError as e:
            if isinstance(e, NothingToRollBack):
                served = self.bot.store and await self.bot.store.served_version(kind)
                text = t(loc, "rollback_none", model=kind, served=_served(self.bot, kind, served))
            else:
                text = t(loc, "train_error", model=kind, detail=str(e)[:1500])
            await _reply(interaction, text)
            return
        await _reply(interaction, t(loc, "rollback_done", model=kind, version=version))

    # ---- feedback ---------------------------------------------------------------------------------------

    @feedback.command(name=_("export"), description=_("Download this server's votes as CSV (admins)"))
    @server_admin()
    async def feedback_export(self, interaction: discord.Interaction) -> None:
        store = need_store(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild = interaction.guild_id  # None (a DM, so the owner): every server
        text = await store.export_csv(guild)
        data = text.encode("utf-8")
        name = f"muse-feedback-{guild or 'all'}-{dt.date.today().isoformat()}.csv"
        if len(data) > EXPORT_GZIP_OVER:
            data, name = gzip.compress(data), name + ".gz"
        n = max(0, text.count("\n") - 1)
        loc = interaction.locale
        await _reply(interaction, t(loc, "export_done" if guild else "export_all", n=n),
                     file=discord.File(io.BytesIO(data), name))

    # ---- members ----------------------------------------------------------------------------------------

    @muse.command(name=_("stats"), description=_("Your contribution, and this server's favourite results"))
    async def stats(self, interaction: discord.Interaction) -> None:
        store = need_store(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        loc = interaction.locale
        guild = interaction.guild_id
        mine = await store.user_stats(interaction.user.id, guild)
        embed = discord.Embed(title=t(loc, "stats_title"), colour=discord.Colour.gold())
        embed.add_field(name=t(loc, "stats_results"), value=str(mine.get("results", 0)))
        embed.add_field(name=t(loc, "stats_votes"), value=str(mine.get("votes", 0)))
        embed.add_field(name=t(loc, "stats_likes"), value=str(mine.get("likes_received", 0)))
        if guild is not None:  # in a DM there is no server (and other servers' favourites are theirs)
            favs = await store.favourites(guild, limit=5)
            lines = [self._favourite(loc, guild, row, score) for row, score in favs]
            embed.add_field(name=t(loc, "stats_favourites"), inline=False,
                            value="\n".join(lines)[:1024] if lines else t(loc, "stats_no_favourites"))
        fb = self.bot.settings.feedback
        embed.set_footer(text=t(loc, "stats_hint", positive=" ".join(fb.positive), negative=" ".join(fb.negative)))
        await _reply(interaction, embed=embed)

    @staticmethod
    def _favourite(loc, guild: int, row, score: int) -> str:
        p = row.params or {}
        if row.kind == "image":
            label = f"{p.get('theme', '?')} · {row.seed}"
        elif row.kind in ("poem", "morph-poem") and row.content:
            label = row.content.splitlines()[0][:60]
        elif row.kind == "morph":
            ends = [p.get(k) if isinstance(p.get(k), dict) else {} for k in ("from", "to")]
            label = " → ".join(str(e.get("emoji") or e.get("attachment") or "Muse")[:30] for e in ends)
        else:
            label = str(row.seed or "")
        kind = t(loc, f"kind_{row.kind}") if row.kind in ("image", "poem", "morph", "morph-poem") else row.kind
        link = (f" · [{t(loc, 'jump')}](https://discord.com/channels/{guild}/{row.channel_id}/{row.message_id})"
                if row.message_id and row.channel_id else "")
        return f"**+{score}** · {kind} · {discord.utils.escape_markdown(label)}{link}"
