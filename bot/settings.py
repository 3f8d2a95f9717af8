"""Settings: ``config/default.toml``, then a user file, then ``MUSE_<SECTION>_<KEY>`` environment variables.

The token is deliberately not a setting: it comes only from ``$DISCORD_TOKEN`` (see `token_from_env`), so it
never lands in a file that gets committed or pasted, and `Settings` can be logged or shown safely.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

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


@dataclass
class EngineSettings:
    device: str = "cpu"
    models_dir: str = ""
    threads: int = 0
    max_queue: int = 64
    per_user: int = 4
    max_batch_images: int = 64
    batch_window_ms: float = 2.0


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
class FeedbackSettings:
    """Which reactions count as votes, and how much a button press says about the result it was pressed on."""

    positive: list[str] = field(default_factory=lambda: ["👍", "❤️", "⭐", "🔥"])
    negative: list[str] = field(default_factory=lambda: ["👎"])
    variation_weight: float = 0.3  # asking for variations of a result: a weak "I like this"
    reroll_weight: float = -0.3  # rerolling it: a weak "not this"


@dataclass
class TrainerSettings:
    enabled: bool = True
    min_feedback: int = 32  # new votes on a model before the trainer fine-tunes it on its own
    every_hours: float = 24.0  # also fine-tune on this schedule when new votes have arrived (0 = off)
    per_user_cap: int = 16  # votes of one user counted per run (against brigading)
    tolerance: float = 0.15  # the eval gate: how much a candidate's quality or diversity may fall
    report_channel: int = 0  # a channel id for trainer reports; 0 = a DM to the bot's owner


@dataclass
class Settings:
    discord: DiscordSettings = field(default_factory=DiscordSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    feedback: FeedbackSettings = field(default_factory=FeedbackSettings)
    trainer: TrainerSettings = field(default_factory=TrainerSettings)
    sources: list[str] = field(default_factory=list)  # where the values came from, for `muse run` to print

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("sources")
        return d


def _coerce(value: Any, like: Any, where: str) -> Any:
    try:
        if isinstance(like, list):  # a TOML array, or a comma-separated string (environment variables)
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)):
                raise ValueError(value)
            return [str(x).strip() for x in items if str(x).strip()]
        if isinstance(like, bool):
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if isinstance(like, int):
            if isinstance(value, float) or isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if isinstance(like, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        what = "list of strings" if isinstance(like, list) else type(like).__name__
        raise SettingsError(f"{where} must be a {what}, not {value!r}.") from None


def _merge(base: dict[str, dict[str, Any]], layer: Mapping[str, Any], origin: str) -> None:
    for section, values in layer.items():
        if section not in base or not isinstance(values, Mapping):
            raise SettingsError(f"{origin}: unknown section [{section}]; known: {', '.join(base)}.")
        for key, value in values.items():
            if key not in base[section]:
                raise SettingsError(f"{origin}: unknown setting {section}.{key}; known: {', '.join(base[section])}.")
            base[section][key] = _coerce(value, base[section][key], f"{origin}: {section}.{key}")


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
                values[key] = _coerce(env[name], values[key], f"${name}")
                sources.append(f"${name}")
    if overrides:
        _merge(base, overrides, "overrides")
    s = Settings(**{sec: _section_class(sec)(**vals) for sec, vals in base.items()}, sources=sources)
    _validate(s)
    return s


def _section_class(name: str) -> type:
    return {"discord": DiscordSettings, "engine": EngineSettings, "database": DatabaseSettings,
            "limits": LimitSettings, "feedback": FeedbackSettings, "trainer": TrainerSettings}[name]


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
