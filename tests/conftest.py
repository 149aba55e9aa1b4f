"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import pytest

from flows.localserver import write_loopback_config

# Prefect reads its settings at import: keep its home out of the user's ~/.prefect and stay offline.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="atlaswatch-test-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "flows,storage,alerts,classifiers")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ATLASWATCH_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's shared/ folder beside the checkout; CI has it, a user's clone does not."""
    if not SHARED.is_dir():
        pytest.skip(
            f"{SHARED} is not there: these tests need the project's shared/ folder "
            "(real feeds, pages and seed articles) beside the checkout, as CI has it"
        )
    return SHARED


@pytest.fixture(scope="session")
def prefect_harness():
    """Prefect's test harness (a temporary server and database), started once per test session."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.prefect_env import direct_flow_runs

    with prefect_test_harness(server_startup_timeout=180), direct_flow_runs():
        yield


@pytest.fixture
def site():
    """A real HTTP server on 127.0.0.1 (port 0); tests add routes to `site.routes`."""
    from flows.localserver import LocalServer

    with LocalServer() as server:
        yield server


class _Inbox:
    """An aiosmtpd handler that keeps what it accepts, or refuses with a chosen reply."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.refuse_with: str | None = None
        self.refuse_recipients: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse_recipients:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_with:
            return self.refuse_with
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on loopback."""
    from aiosmtpd.controller import Controller

    inbox = _Inbox()
    # aiosmtpd 1.4 checks readiness by connecting to the port it was given, so port 0 cannot be used.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    inbox.host, inbox.port = "127.0.0.1", port
    try:
        yield inbox
    finally:
        controller.stop()


def write_config(
    tmp_path: Path, site_url: str, feeds: list[tuple[str, str]], extra: str = ""
) -> Path:
    """A config polling feeds on the test server, with only 127.0.0.1 let through and short deadlines."""
    return write_loopback_config(
        tmp_path,
        site_url,
        feeds,
        fetch="connect_timeout = 3.0\nrequest_deadline = 8.0\nwork_timeout = 20.0\n",
        extra=f'[classifier]\nmodels_dir = "models"\n{extra}\n',
    )
