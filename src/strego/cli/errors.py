"""The CLI's two user-facing failures; ``strego`` prints either as one line.

Kept apart from the command modules so ``cli.main`` can catch them without importing
Redis or PostgreSQL.
"""

from __future__ import annotations

__all__ = ["CommandError", "UsageError"]


class CommandError(Exception):
    """The command failed (Redis unreachable, unknown task, a refusal): exit 1."""


class UsageError(CommandError):
    """The command line is wrong (a value argparse could not check): exit 2."""
