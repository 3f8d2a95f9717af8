"""Settings: ``config/default.toml``, then a user file, then ``MUSE_<SECTION>_<KEY>`` environment variables.

Each setting is declared once: [engine], [feedback] and [trainer] are the library's own config dataclasses
(the bot passes them to the engine, the store and the trainer as they are), and the other sections are the
bot's. A section's keys are its dataclass's fields; values are coerced to the fields' types.

The token is deliberately not a setting: it comes only from ``$DISCORD_TOKEN`` (see `token_from_env`), so it
never lands in a file that gets committed or pasted, and `Settings` can be logged or shown safely.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
import typing
from typing import Any, Mapping

from genmodels.breeding import BreedConfig
from genmodels.engine import EngineConfig
from genmodels.feedback.store import VoteConfig
from genmodels.feedback.trainer import TasteConfig, TrainerConfig
from web.config import WebConfig

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "config" / "default.toml"
USER_FILE = Path("muse.toml")


class SettingsError(ValueError):
    """A settings file or variable is wrong; the message says which and how to fix it."""


@dataclass
class DiscordSettings:
    test_guild: int = 0
    allow_dms: bool = True
    application_id: int = 0
    home_guild: int = 0  # whose administrators may train, roll back and inspect the shared models; 0 = owner only


# The library's config dataclasses are the settings sections where the library owns the setting: [engine] is
# `genmodels.engine.EngineConfig`, [feedback] is `genmodels.feedback.store.VoteConfig`, and [trainer] is
# `genmodels.feedback.trainer.TrainerConfig` with the two keys only the bot uses. Each field is a key of its
# section (`section_keys`), and ``MUSE_<SECTION>_<KEY>`` overrides it; the bot hands the sections to the library
# as they are.
EngineSettings = EngineConfig
FeedbackSettings = VoteConfig


@dataclass
class DatabaseSettings:
    path: str = "muse.sqlite3"
    retry_seconds: float = 30.0  # a result that could not be saved (locked or full database) is retried this often


@dataclass
class LimitSettings:
    cell_px: int = 256
    max_attachment_mb: float = 8.0
    max_text_chars: int = 200
    cooldown_rate: int = 5
    cooldown_per_s: float = 30.0


@dataclass
class SessionSettings:
    """[sessions]: group creative sessions (``/session``), the channel's policy; breeding itself is [breeding]."""

    enabled: bool = True  # false: /session answers that sessions are switched off here
    per_guild: int = 2  # sessions running at once in one server; 0 = no limit (one per channel always)
    quorum: int = 10  # a round closes as soon as this many members have voted; 0 = only at its deadline
    extend_below: int = 2  # at the deadline, a round with fewer voters than this is extended once, by half a round
    idle_minutes: float = 30.0  # a paused session (a round nobody voted in) ends after this long without a vote
    threads: bool = True  # open a thread per session (the channel is used where threads are not allowed)
    time_scale: float = 1.0  # multiplies every session duration: tests and benchmarks compress time with it


@dataclass
class TrainerSettings(TrainerConfig):
    """[trainer]: the trainer's own config, plus whether the bot runs it and where it reports.

    ``models_dir`` and ``device`` are not keys of [trainer]: the trainer writes where the engine reads, on the
    engine's device (`for_engine`). ``data_dir`` is ``$MUSE_DATA_DIR`` and ``finetune`` the fine-tune recipe."""

    enabled: bool = True  # false: no automatic fine-tuning
    report_channel: int = 0  # a channel id for trainer reports; 0 = a DM to the bot's owner

    def for_engine(self, engine: EngineConfig, taste: TasteConfig | None = None) -> "TrainerSettings":
        """The trainer's config for this engine (and the [taste] section, when given)."""
        return dataclasses.replace(self, models_dir=engine.models_dir, device=engine.device,
                                   taste=taste if taste is not None else self.taste)


@dataclass
class Settings:
    discord: DiscordSettings = field(default_factory=DiscordSettings)
    engine: EngineConfig = field(default_factory=EngineConfig)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    feedback: VoteConfig = field(default_factory=VoteConfig)
    trainer: TrainerSettings = field(default_factory=TrainerSettings)
    sessions: SessionSettings = field(default_factory=SessionSettings)
    breeding: BreedConfig = field(default_factory=BreedConfig)
    taste: TasteConfig = field(default_factory=TasteConfig)  # the servers' lineages; handed to the trainer
    web: WebConfig = field(default_factory=WebConfig)  # the web pages (`web/`)
    sources: list[str] = field(default_factory=list)  # where the values came from, for `muse run` to print

    def to_dict(self) -> dict[str, Any]:
        """Every section's keys and values (what the files and the environment can set)."""
        return {name: {k: _plain(getattr(getattr(self, name), k)) for k in section_keys(name)} for name in SECTIONS}


# Fields of the library's configs that are not settings: the trainer follows the engine (`for_engine`) and the
# environment ($MUSE_DATA_DIR); the fine-tune recipe, the stop grace and the unbatched mode are for code and
# benchmarks, not for a config file.
NOT_KEYS: dict[str, tuple[str, ...]] = {"engine": ("batching",), "sessions": ("time_scale",),
                                       "trainer": ("models_dir", "data_dir", "device", "stop_grace", "finetune",
                                                   "taste")}

SECTIONS: dict[str, type] = {"discord": DiscordSettings, "engine": EngineConfig, "database": DatabaseSettings,
                             "limits": LimitSettings, "feedback": VoteConfig, "trainer": TrainerSettings,
                             "sessions": SessionSettings, "breeding": BreedConfig, "taste": TasteConfig,
                             "web": WebConfig}


def section_keys(section: str) -> dict[str, Any]:
    """The keys of a section: its dataclass's fields with their types, less its `NOT_KEYS`."""
    cls = SECTIONS[section]
    hints = typing.get_type_hints(cls)
    skip = NOT_KEYS.get(section, ())
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init and f.name not in skip}


def _plain(value: Any) -> Any:
    """A value as TOML writes it: tuples as lists, None as the empty string."""
    if isinstance(value, tuple):
        return list(value)
    return "" if value is None else value


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """``value`` (from TOML, or a string from the environment) as a value of the field type ``typ``."""
    args = typing.get_args(typ)
    if type(None) in args:  # optional: "" (or nothing) means None
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        typ = next(a for a in args if a is not type(None))
    origin = typing.get_origin(typ)
    try:
        if origin in (list, tuple):  # a TOML array, or a comma-separated string (environment variables)
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)):
                raise ValueError(value)
            out = [str(x).strip() for x in items if str(x).strip()]
            return tuple(out) if origin is tuple else out
        if typ is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if typ is int:
            if isinstance(value, float) or isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if typ is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        what = "list of strings" if origin in (list, tuple) else getattr(typ, "__name__", str(typ))
        raise SettingsError(f"{where} must be a {what}, not {value!r}.") from None


def _merge(base: dict[str, dict[str, Any]], layer: Mapping[str, Any], origin: str) -> None:
    for section, values in layer.items():
        if section not in base or not isinstance(values, Mapping):
            raise SettingsError(f"{origin}: unknown section [{section}]; known: {', '.join(base)}.")
        for key, value in values.items():
            if key not in base[section]:
                raise SettingsError(f"{origin}: unknown setting {section}.{key}; known: {', '.join(base[section])}.")
            base[section][key] = _coerce(value, section_keys(section)[key], f"{origin}: {section}.{key}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"The settings file {path} does not exist.") from None
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"The settings file {path} is not valid TOML: {e}.") from None


def load_settings(user_file: str | os.PathLike | None = None, env: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Settings:
    """Defaults ← config/default.toml ← user file ← MUSE_* environment ← ``overrides``.

    The user file is ``user_file``, else ``$MUSE_CONFIG``, else ``./muse.toml`` when it exists.
    """
    env = os.environ if env is None else env
    base = Settings().to_dict()
    sources = ["built-in defaults"]
    if DEFAULT_FILE.exists():
        _merge(base, _read_toml(DEFAULT_FILE), str(DEFAULT_FILE))
        sources.append(str(DEFAULT_FILE))
    path = Path(user_file) if user_file else Path(env["MUSE_CONFIG"]) if env.get("MUSE_CONFIG") else None
    if path is None and USER_FILE.exists():
        path = USER_FILE
    if path is not None:
        _merge(base, _read_toml(path), str(path))
        sources.append(str(path))
    for section, values in base.items():
        for key in values:
            name = f"MUSE_{section}_{key}".upper()
            if name in env:
                values[key] = _coerce(env[name], section_keys(section)[key], f"${name}")
                sources.append(f"${name}")
    if overrides:
        _merge(base, overrides, "overrides")
    both = set(base["feedback"]["positive"]) & set(base["feedback"]["negative"])
    if both:  # said here, in the settings' words, before VoteConfig refuses it
        raise SettingsError(f"feedback.positive and feedback.negative share {', '.join(sorted(both))}; an emoji "
                            "can only be one of them.")
    sections = {}
    for sec, vals in base.items():
        keys = section_keys(sec)
        try:
            sections[sec] = SECTIONS[sec](**{k: _coerce(v, keys[k], f"{sec}.{k}") for k, v in vals.items()})
        except SettingsError:
            raise
        except ValueError as e:  # a library config that checks itself (BreedConfig): say it in the settings' words
            raise SettingsError(f"[{sec}]: {e}") from None
    s = Settings(**sections, sources=sources)
    _validate(s)
    return s


def _validate(s: Settings) -> None:
    if s.engine.max_queue < 1 or s.engine.per_user < 1 or s.engine.max_batch_images < 1:
        raise SettingsError("engine.max_queue, engine.per_user and engine.max_batch_images must be at least 1.")
    if not 64 <= s.limits.cell_px <= 1024 or s.limits.cell_px % 64:
        raise SettingsError("limits.cell_px must be a multiple of 64 between 64 and 1024.")
    if s.limits.cooldown_rate < 1 or s.limits.cooldown_per_s < 0:
        raise SettingsError("limits.cooldown_rate must be at least 1 and limits.cooldown_per_s not negative.")
    fb = s.feedback
    if not fb.positive:
        raise SettingsError("feedback.positive needs at least one emoji (a reaction that counts as a like).")
    if set(fb.positive) & set(fb.negative):
        both = ", ".join(sorted(set(fb.positive) & set(fb.negative)))
        raise SettingsError(f"feedback.positive and feedback.negative share {both}; an emoji can only be one of them.")
    if not (-1 <= fb.variation_weight <= 1 and -1 <= fb.reroll_weight <= 1):
        raise SettingsError("feedback.variation_weight and feedback.reroll_weight must be between -1 and 1.")
    if not -1 <= fb.session_weight <= 1:
        raise SettingsError("feedback.session_weight must be between -1 and 1.")
    ss, br = s.sessions, s.breeding
    if ss.per_guild < 0 or ss.quorum < 0 or ss.extend_below < 0:
        raise SettingsError("sessions.per_guild, sessions.quorum and sessions.extend_below must not be negative.")
    if ss.idle_minutes <= 0 or ss.time_scale <= 0:
        raise SettingsError("sessions.idle_minutes must be more than 0 (and the time scale of a test too).")
    if not 1 <= br.parents <= 9 or br.fresh < 0 or br.max_seeds < 0:
        raise SettingsError("breeding.parents must be between 1 and 9, breeding.fresh and breeding.max_seeds not "
                            "negative.")
    if not 0 <= br.t_low <= 0.5:
        raise SettingsError("breeding.t_low must be between 0 and 0.5.")
    if not (0 <= br.mutation_end <= 1 and 0 <= br.mutation_start <= 1):
        raise SettingsError("breeding.mutation_start and breeding.mutation_end must be between 0 and 1.")
    if s.database.retry_seconds <= 0:
        raise SettingsError("database.retry_seconds must be more than 0.")
    tr = s.trainer
    if tr.min_feedback < 1 or tr.per_user_cap < 1:
        raise SettingsError("trainer.min_feedback and trainer.per_user_cap must be at least 1.")
    if tr.every_hours < 0 or tr.tolerance < 0:
        raise SettingsError("trainer.every_hours and trainer.tolerance must not be negative.")


def token_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The bot token from $DISCORD_TOKEN, or None. Never log the return value."""
    env = os.environ if env is None else env
    tok = (env.get("DISCORD_TOKEN") or "").strip()
    return tok or None
