"""Periodic fixtures: the integration suite's in-process servers."""

from __future__ import annotations

from tests.integration.conftest import make_server

__all__ = ["make_server"]
