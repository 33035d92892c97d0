"""What every route needs, kept on ``app.state.strego`` (no module globals)."""

from __future__ import annotations

import dataclasses

from starlette.templating import Jinja2Templates

from strego.inspector import Inspector
from strego.serializers import SerializerRegistry
from strego.ui.config import UIConfig
from strego.ui.history import HistoryReader
from strego.ui.sessions import LoginThrottle, SessionStore

__all__ = ["UIState"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class UIState:
    inspector: Inspector
    history: HistoryReader | None
    config: UIConfig
    templates: Jinja2Templates
    serializers: SerializerRegistry
    asset_version: str
    sessions: SessionStore
    throttle: LoginThrottle
