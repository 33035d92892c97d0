"""The security suite attacks the real app, CLI and Redis: it reuses their fixtures."""

from __future__ import annotations

from tests.cli.conftest import cli  # noqa: F401
from tests.ui.conftest import app, http, live_server, make_client, make_dead  # noqa: F401
