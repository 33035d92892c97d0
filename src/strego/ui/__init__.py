"""strego's web UI and JSON API (the ``strego[ui]`` extra): ``create_app(broker, ...)``.

Mount it in any ASGI app, or run it with ``strego ui``. See docs/ui.md.
"""

from __future__ import annotations

from strego.ui.app import create_app
from strego.ui.config import BasicAuth, TokenAuth

__all__ = ["BasicAuth", "TokenAuth", "create_app"]
