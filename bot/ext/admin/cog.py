"""``/muse``: each server's models and their feedback (that server's managers), and each member's own stats.

    /muse model status [scope]               this server's lineage per model: the version served (its own, or
                                             the base), versions kept with the gate's verdicts, feedback, last
                                             run, like rates by version, and the latest changes with who made them
    /muse model train kind:<model> [scope]   fine-tune this server's model on its votes now; reports promoted /
                                             refused (the gate's reason) / failed
    /muse model rollback kind:<model> [scope]  serve this server's previous version again (the base after its first)
    /muse model reset [kind] [delete_data]   serve this server the base again; ``delete_data:true`` also deletes
                                             everything Muse keeps of the server, after a confirmation button
    /muse feedback export                    this server's votes and button signals as a CSV file
    /muse stats                              your contribution, and this server's favourite results

Every server has its own lineage of each model (`genmodels.lineage`), so ``/muse model`` acts on *this* server's
and is open to its members with Manage Server and to the bot's owner (`bot.checks.require_manager`).
``scope:base`` (and any ``/muse model`` command in a DM) acts on the base that every server grows from, and is for
the owner and the administrators of the home guild (``[discord] home_guild``) only (`bot.checks.require_models_admin`).
``/muse feedback export`` concerns one server's own votes and is for that server's administrators and the owner
(`bot.checks.server_admin`). Anyone else gets a polite ephemeral refusal before anything runs. Replies are
ephemeral. The work is done by the store (`genmodels.feedback.store`) and the trainer
(`genmodels.feedback.trainer`); this file only checks, formats and replies.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import logging
import re
import time
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.app_commands import locale_str as _
from discord.ext import commands

from genmodels import registry
from genmodels.feedback.trainer import NothingToRollBack, TrainerError
from genmodels.registry import BASE

from ...checks import need_store, need_trainer, require_manager, require_models_admin, server_admin
from ...errors import UserError, log_error
from ...i18n import t
from ...recording import version_tag
from ...replies import TOKEN_LIFETIME, SafeItem

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


async def _status_from_store(store, server: int = BASE) -> list[dict]:
    """What `Trainer.status` returns, from the store alone (when the trainer is off)."""
    out = []
    here = server if server != BASE else None
    for model in MODELS:
        base = await store.served_version(model)
        out.append({"model": model, "server": server, "base": base,
                    "served": await store.served_version(model, server) if server != BASE else base,
                    "versions": await store.model_versions(model, server),
                    "last_run": await store.last_run(model, server),
                    "counts": await store.counts(model, here), "like_rates": await store.like_rates(model, here)})
    return out


def _status_field(bot: "MuseBot", loc, row: dict) -> str:
    model = row["model"]
    if row.get("server"):  # a server's lineage: its own version, or the base
        base = _served(bot, model, row.get("base"))
        lines = [t(loc, "status_served_own", version=version_tag(row["served"]), base=base) if row.get("served")
                 else t(loc, "status_served_base", base=base)]
    else:
        lines = [t(loc, "status_served", version=_served(bot, model, row.get("served")))]
    versions = [version_tag(str(v.get("version", "?") if isinstance(v, dict) else v))
                + (f" ({_gate(v)})" if isinstance(v, dict) and v.get("status") not in (None, "served") else "")
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


def _gate(version: dict) -> str:
    """A kept version's status, with the gate's reason for a refused one."""
    status, note = version.get("status", "?"), (version.get("note") or "").strip()
    return f"{status}: {note[:60]}" if status == "refused" and note else status


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


SCOPE_CHOICES = [app_commands.Choice(name=_("This server"), value="server"),
                 app_commands.Choice(name=_("The base (owner)"), value="base")]


async def _lineage(interaction: discord.Interaction, scope: str) -> int:
    """The lineage a ``/muse model`` command acts on, once the member may: this server's (members with Manage
    Server, and the owner), or the base (``scope:base``, and always in a DM: the owner and home-server admins)."""
    if scope == "base" or interaction.guild_id is None:
        await require_models_admin(interaction)
        return BASE
    await require_manager(interaction)
    return interaction.guild_id


def _change(row: dict) -> str:
    """One line of a lineage's change log: when, what, which version, who."""
    who = f" <@{row['actor_id']}>" if row.get("actor_id") else ""
    version = f" {row['version']}" if row.get("version") else ""
    return f"{_when(row.get('created_at'))} {row['model']} {row['action']}{version}{who}"


CONFIRM_SECONDS = 120  # how long the confirmation of a deletion may be pressed


class ForgetServer(SafeItem, discord.ui.DynamicItem[discord.ui.Button],
                   template=r"muse:forget:(?P<guild>\d{1,20}):(?P<user>\d{1,20}):(?P<until>\d{1,12}):(?P<yes>[01])"):
    """The two buttons under ``/muse model reset delete_data:true``: delete everything, or cancel. Their state is in
    their custom_id (the server, the member who asked, until when), so they answer after a restart too; only that
    member may press them, and only within `CONFIRM_SECONDS`."""

    def __init__(self, guild: int, user: int, until: int, yes: bool, label: str | None = None):
        self.guild, self.user, self.until, self.yes = guild, user, until, yes
        super().__init__(discord.ui.Button(
            label=label, style=discord.ButtonStyle.danger if yes else discord.ButtonStyle.secondary,
            custom_id=f"muse:forget:{guild}:{user}:{until}:{int(yes)}"))

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match[str]):
        return cls(int(match["guild"]), int(match["user"]), int(match["until"]), match["yes"] == "1")

    @classmethod
    def view(cls, interaction: discord.Interaction) -> discord.ui.View:
        until, loc = int(time.time()) + CONFIRM_SECONDS, interaction.locale
        view = discord.ui.View(timeout=None)
        view.add_item(cls(interaction.guild_id, interaction.user.id, until, True, t(loc, "b_delete_all")))
        view.add_item(cls(interaction.guild_id, interaction.user.id, until, False, t(loc, "b_cancel")))
        return view

    async def run(self, interaction: discord.Interaction) -> None:
        loc = interaction.locale
        if interaction.user.id != self.user or interaction.guild_id != self.guild:
            raise UserError("manager_only")
        await require_manager(interaction)  # still a manager when pressing
        if not self.yes:
            await interaction.response.edit_message(content=t(loc, "reset_cancelled"), view=None)
            return
        if time.time() > self.until:
            await interaction.response.edit_message(content=t(loc, "reset_expired"), view=None)
            return
        trainer = need_trainer(interaction)
        await interaction.response.edit_message(view=None)
        try:
            out = await trainer.reset(self.guild, delete_data=True, actor=self.user)
        except TrainerError as e:
            await interaction.edit_original_response(content=t(loc, "train_error", model="—", detail=str(e)[:1500]))
            return
        d = out["deleted"]
        await interaction.edit_original_response(content=t(
            loc, "reset_deleted", results=d.get("results", 0), sessions=d.get("sessions", 0),
            versions=d.get("model_versions", 0)))


class Muse(commands.Cog):
    """The ``/muse`` command group."""

    muse = app_commands.Group(name=_("muse"), description=_("Muse's models, feedback and your stats"))
    model = app_commands.Group(name=_("model"),
                               description=_("This server's models and their training (Manage Server)"), parent=muse)
    feedback = app_commands.Group(name=_("feedback"), description=_("The votes Muse has recorded (admins)"),
                                  parent=muse)

    def __init__(self, bot: "MuseBot"):
        self.bot = bot

    # ---- models -----------------------------------------------------------------------------------------

    @model.command(name=_("status"),
                   description=_("This server's model versions, their gate results and like rates (Manage Server)"))
    @app_commands.describe(scope=_("This server's own model, or the base shared by every server (the owner)"))
    @app_commands.rename(scope=_("scope"))
    @app_commands.choices(scope=SCOPE_CHOICES)
    async def model_status(self, interaction: discord.Interaction, scope: str = "server") -> None:
        server = await _lineage(interaction, scope)
        trainer = self.bot.trainer
        store = need_store(interaction) if trainer is None else self.bot.store
        await interaction.response.defer(ephemeral=True, thinking=True)
        rows = await trainer.status(server) if trainer is not None else await _status_from_store(store, server)
        loc = interaction.locale
        title = "status_title_server" if server != BASE else "status_title_base"
        embed = discord.Embed(title=t(loc, title), colour=discord.Colour.dark_teal())
        for row in rows:
            embed.add_field(name=row["model"], value=_status_field(self.bot, loc, row), inline=False)
        if server != BASE and store is not None:
            changes = await store.model_changes(server, limit=5)
            if changes:
                embed.add_field(name="\u200b", inline=False,
                                value=t(loc, "status_changes", changes=" · ".join(map(_change, changes)))[:1024])
        footer = [t(loc, "trainer_off")] if trainer is None else []
        if server != BASE:
            footer.append(t(loc, "status_shared" if self.bot.settings.taste.share_with_base else "status_private"))
        if footer:
            embed.set_footer(text=" ".join(footer)[:2048])
        await _reply(interaction, embed=embed)

    @model.command(name=_("train"), description=_("Fine-tune this server's model on its votes now (Manage Server)"))
    @app_commands.describe(kind=_("Which model"),
                           scope=_("This server's own model, or the base shared by every server (the owner)"))
    @app_commands.rename(kind=_("kind"), scope=_("scope"))
    @app_commands.choices(kind=MODEL_CHOICES, scope=SCOPE_CHOICES)
    async def model_train(self, interaction: discord.Interaction, kind: str, scope: str = "server") -> None:
        server = await _lineage(interaction, scope)
        trainer, kind, loc = await _begin_model_admin(interaction, kind)
        try:
            out = await trainer.train(kind, server, trigger=f"admin:{interaction.user.id}", actor=interaction.user.id)
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

    @model.command(name=_("rollback"), description=_("Serve this server's previous version again (Manage Server)"))
    @app_commands.describe(kind=_("Which model"),
                           scope=_("This server's own model, or the base shared by every server (the owner)"))
    @app_commands.rename(kind=_("kind"), scope=_("scope"))
    @app_commands.choices(kind=MODEL_CHOICES, scope=SCOPE_CHOICES)
    async def model_rollback(self, interaction: discord.Interaction, kind: str, scope: str = "server") -> None:
        server = await _lineage(interaction, scope)
        trainer, kind, loc = await _begin_model_admin(interaction, kind)
        try:
            version = await trainer.rollback(kind, server, actor=interaction.user.id)
        except TrainerError as e:
            if isinstance(e, NothingToRollBack):
                store = self.bot.store
                own = await store.served_version(kind, server) if store is not None and server else None
                base = _served(self.bot, kind, await store.served_version(kind) if store is not None else None)
                served = version_tag(own) if own else (f"base {base}" if server else base)
                text = t(loc, "rollback_none", model=kind, served=served)
            else:
                text = t(loc, "train_error", model=kind, detail=str(e)[:1500])
            await _reply(interaction, text)
            return
        await _reply(interaction, t(loc, "rollback_done", model=kind, version=version))

    @model.command(name=_("reset"), description=_("Serve this server the base model again (Manage Server)"))
    @app_commands.describe(kind=_("Which model"),
                           delete_data=_("Also delete this server's results, votes, sessions and versions"))
    @app_commands.rename(kind=_("kind"), delete_data=_("delete_data"))
    @app_commands.choices(kind=[app_commands.Choice(name=_("Every model"), value="all"), *MODEL_CHOICES])
    async def model_reset(self, interaction: discord.Interaction, kind: str = "all", delete_data: bool = False) -> None:
        if interaction.guild_id is None:
            raise UserError("reset_dm")
        await require_manager(interaction)
        models = MODELS if kind == "all" else (check_model(kind),)
        trainer = need_trainer(interaction)
        loc = interaction.locale
        if delete_data:  # nothing is deleted until the same member confirms with a button
            await interaction.response.send_message(t(loc, "reset_confirm"), view=ForgetServer.view(interaction),
                                                    ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        names = t(loc, "all_models") if kind == "all" else kind
        try:
            out = await trainer.reset(interaction.guild_id, models, actor=interaction.user.id)
        except TrainerError as e:
            await _reply(interaction, t(loc, "train_error", model=names, detail=str(e)[:1500]))
            return
        await _reply(interaction, t(loc, "reset_done" if out["models"] else "reset_nothing", models=names))

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

    # ---- the web pages ----------------------------------------------------------------------------------

    @muse.command(name=_("web"),
                  description=_("Make this server's gallery on Muse's web pages public, or private (Manage Server)"))
    @app_commands.describe(public=_("true: anyone with the link sees the gallery; false: only this server's members"))
    @app_commands.rename(public=_("public"))
    async def web_public(self, interaction: discord.Interaction, public: bool) -> None:
        if interaction.guild_id is None:
            raise UserError("web_dm")
        await require_manager(interaction)
        store = need_store(interaction)
        name = interaction.guild.name if interaction.guild is not None else ""
        await store.set_web_public(interaction.guild_id, public, name=name, actor_id=interaction.user.id)
        loc, web = interaction.locale, self.bot.settings.web
        text = t(loc, "web_public_on" if public else "web_public_off", url=f"{web.url()}/s/{interaction.guild_id}")
        if not web.enabled:
            text += "\n" + t(loc, "web_pages_off")
        await interaction.response.send_message(text, ephemeral=True)

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
