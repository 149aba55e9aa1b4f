"""Prefect's environment, set before prefect is imported: a home under the data folder, no telemetry."""

from __future__ import annotations

import os
from pathlib import Path

from flows.settings import Settings

QUIET_LOGGERS = "flows,storage,alerts,classifiers"


def configure_prefect(settings: Settings, environ: dict[str, str] | None = None) -> Path:
    """Returns PREFECT_HOME. A value the user set wins; so does an API URL pointing at their server."""
    env = os.environ if environ is None else environ
    home = Path(env.get("PREFECT_HOME") or (settings.data_dir / "prefect")).expanduser().resolve()
    env["PREFECT_HOME"] = str(home)
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", QUIET_LOGGERS)
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    home.mkdir(parents=True, exist_ok=True)
    return home
