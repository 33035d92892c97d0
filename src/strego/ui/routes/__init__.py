"""Thin route modules: parse the request, call ``queries``/``actions``, render or return JSON."""
