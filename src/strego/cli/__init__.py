"""The ``strego`` command. Each subcommand lives in its own ``*_cmd.py`` module."""
