"""Fault-injection suite: real worker processes, a private Redis, faults, an outside log."""
