"""The flow_*.lua scripts: ``_lib.lua`` then ``_flow_lib.lua`` prepended, as the
queue's own scripts have ``_lib.lua``."""

from __future__ import annotations

import functools
from importlib import resources

from strego.broker.redis.scripts import Script

__all__ = ["FlowScripts", "flow_scripts"]


def _read(name: str) -> str:
    return resources.files("strego.broker.redis").joinpath("lua", f"{name}.lua").read_text()


class FlowScripts:
    def __init__(self) -> None:
        lib = _read("_lib") + _read("_flow_lib")
        self.put = Script("flow_put", _read("flow_put"))
        self.start = Script("flow_start", lib + _read("flow_start"))
        self.open = Script("flow_open", lib + _read("flow_open"))
        self.arrive = Script("flow_arrive", lib + _read("flow_arrive"))
        self.settle = Script("flow_settle", _read("flow_settle"))
        self.upstream = Script("flow_upstream", _read("flow_upstream"))
        self.cancel = Script("flow_cancel", lib + _read("flow_cancel"))
        self.prune = Script("flow_prune", _read("flow_prune"))


@functools.cache
def flow_scripts() -> FlowScripts:
    """Loaded once per process (the sources never change at run time)."""
    return FlowScripts()
