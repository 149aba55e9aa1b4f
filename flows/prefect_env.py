"""Prefect's environment, set before prefect is imported: a home under the data folder, no telemetry."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flows.settings import Settings

QUIET_LOGGERS = "flows,storage,alerts,classifiers"
HEARTBEAT_VARIABLES = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")


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


@contextmanager
def direct_flow_runs(environ: dict[str, str] | None = None) -> Iterator[None]:
    """Around flows called in this process (`atlaswatch run`, `poll`, `digest`, the demo): no
    flow-run heartbeat unless the user set its frequency. Prefect 3.8.8's heartbeat thread
    sleeps in one-second steps and every run waits for it to wake before it ends (an empty
    flow run: 1.08 s with it, 0.13 s without). Only an automation the user sets up reads
    heartbeats; deployments run by `atlaswatch serve` keep them."""
    env = os.environ if environ is None else environ
    if any(name in env for name in HEARTBEAT_VARIABLES):
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
