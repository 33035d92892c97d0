"""``python -m benchmarks``: what ``scripts/bench`` runs."""

from benchmarks.cli import main

raise SystemExit(main())
