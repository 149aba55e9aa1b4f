"""Configuration: built-in defaults < the user's TOML file < environment < explicit arguments."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

CONFIG_ENV = "ATLASWATCH_CONFIG"


class ConfigError(Exception):
    """The configuration file or an environment override is unusable."""


@dataclass(frozen=True)
class FeedConfig:
    url: str
    name: str = ""


@dataclass(frozen=True)
class StorageSettings:
    path: Path = Path("data/atlaswatch.db")


@dataclass(frozen=True)
class FetchSettings:
    allow_private_networks: bool = False
    allowed_networks: tuple[str, ...] = ()
    user_agent: str = "atlaswatch/0.1"
    connect_timeout: float = 10.0
    request_deadline: float = 30.0
    max_redirects: int = 5
    max_feed_bytes: int = 5 * 1024 * 1024
    max_page_bytes: int = 10 * 1024 * 1024
    max_entries_per_feed: int = 200
    page_concurrency: int = 8
    per_host_concurrency: int = 2
    worker_processes: int = 2
    work_timeout: float = 30.0


@dataclass(frozen=True)
class EmailSettings:
    smtp_host: str = ""
    smtp_port: int = 587
    starttls: bool = True
    ssl: bool = False
    username: str = ""
    password_env: str = "ATLASWATCH_SMTP_PASSWORD"
    sender: str = "atlaswatch@localhost"
    recipients: tuple[str, ...] = ()
    outbox: Path = Path("data/outbox")
    timeout: float = 45.0
    subject_prefix: str = "[atlaswatch]"

    @property
    def password(self) -> str:
        """Secrets come from the environment only, never from the file."""
        return os.environ.get(self.password_env, "")


@dataclass(frozen=True)
class ScheduleSettings:
    poll_every_minutes: int = 30
    digest_cron: str = "0 7 * * *"
    timezone: str = "Africa/Casablanca"


@dataclass(frozen=True)
class ClassifierSettings:
    model: str = ""
    models_dir: Path = Path("data/models")


@dataclass(frozen=True)
class Settings:
    storage: StorageSettings = field(default_factory=StorageSettings)
    fetch: FetchSettings = field(default_factory=FetchSettings)
    email: EmailSettings = field(default_factory=EmailSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)
    feeds: tuple[FeedConfig, ...] = ()
    source: str = "built-in defaults"

    @property
    def data_dir(self) -> Path:
        return self.storage.path.parent


_SECTIONS: dict[str, type] = {
    "storage": StorageSettings,
    "fetch": FetchSettings,
    "email": EmailSettings,
    "schedule": ScheduleSettings,
    "classifier": ClassifierSettings,
}


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read the defaults, then the user's file (argument, else $ATLASWATCH_CONFIG), then env overrides."""
    env = dict(os.environ) if env is None else env
    raw = _read_toml_text(
        resources.files("flows").joinpath("defaults.toml").read_text("utf-8"), "defaults"
    )
    path = path or env.get(CONFIG_ENV) or None
    source = "built-in defaults"
    base_dir = Path.cwd()
    if path:
        config_path = Path(path).expanduser()
        if not config_path.is_file():
            raise ConfigError(
                f"config file {config_path} does not exist: pass an existing TOML file with --config "
                f"or unset {CONFIG_ENV} to use the built-in defaults"
            )
        user = _read_toml_text(config_path.read_text("utf-8"), str(config_path))
        raw = _merge(raw, user)
        source = str(config_path)
        base_dir = config_path.resolve().parent
    raw = _apply_env(raw, env)
    return _build(raw, source, base_dir)


def _read_toml_text(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{origin} is not valid TOML: {error}") from error


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _apply_env(raw: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """ATLASWATCH_EMAIL_SMTP_HOST=... overrides [email] smtp_host."""
    raw = {key: dict(value) if isinstance(value, dict) else value for key, value in raw.items()}
    for section, cls in _SECTIONS.items():
        for item in fields(cls):
            name = f"ATLASWATCH_{section}_{item.name}".upper()
            if name in env:
                raw.setdefault(section, {})[item.name] = _parse_env_value(
                    env[name], item.type, name
                )
    return raw


def _parse_env_value(value: str, annotation: Any, name: str) -> Any:
    kind = str(annotation)
    try:
        if kind == "bool":
            return value.strip().lower() in {"1", "true", "yes", "on"}
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
    except ValueError as error:
        raise ConfigError(f"{name}={value!r} is not a valid {kind}") from error
    if kind.startswith("tuple"):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _build(raw: dict[str, Any], source: str, base_dir: Path) -> Settings:
    unknown = set(raw) - set(_SECTIONS) - {"feeds"}
    if unknown:
        raise ConfigError(
            f"unknown section(s) {sorted(unknown)} in {source}; known: {sorted(_SECTIONS)} and [[feeds]]"
        )
    built: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        built[section] = _build_section(cls, raw.get(section, {}), section, source, base_dir)
    feeds = tuple(_build_feed(item, source) for item in raw.get("feeds", []))
    return Settings(**built, feeds=feeds, source=source)


def _build_section(
    cls: type, values: dict[str, Any], section: str, source: str, base_dir: Path
) -> Any:
    known = {item.name: item for item in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(
            f"unknown key(s) {sorted(unknown)} in [{section}] of {source}; known: {sorted(known)}"
        )
    converted: dict[str, Any] = {}
    for key, value in values.items():
        kind = str(known[key].type)
        try:
            if kind == "Path":
                path = Path(str(value)).expanduser()
                converted[key] = (
                    path if path.is_absolute() or source == "built-in defaults" else base_dir / path
                )
            elif kind.startswith("tuple"):
                converted[key] = tuple(str(v) for v in value)
            elif kind == "bool":
                if not isinstance(value, bool):
                    raise TypeError
                converted[key] = value
            elif kind == "int":
                converted[key] = int(value)
            elif kind == "float":
                converted[key] = float(value)
            else:
                converted[key] = str(value)
        except (TypeError, ValueError) as error:
            raise ConfigError(
                f"[{section}] {key} = {value!r} in {source} should be a {kind}"
            ) from error
    return cls(**converted)


def _build_feed(item: Any, source: str) -> FeedConfig:
    if not isinstance(item, dict) or not isinstance(item.get("url"), str):
        raise ConfigError(f'every [[feeds]] entry in {source} needs url = "https://..."')
    return FeedConfig(url=item["url"].strip(), name=str(item.get("name", "")).strip())


def with_overrides(settings: Settings, **sections: Any) -> Settings:
    """A copy with whole sections or section fields replaced: with_overrides(s, email={"smtp_host": "x"})."""
    changes: dict[str, Any] = {}
    for name, value in sections.items():
        current = getattr(settings, name)
        changes[name] = replace(current, **value) if isinstance(value, dict) else value
    return replace(settings, **changes)
