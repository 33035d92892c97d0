"""strego's benchmark suite (issue #9): the raw-Redis ceiling, strego and its peers.

Run it with ``scripts/bench`` (``--quick`` for a smoke run). Not part of the tests.
"""
