"""pytester runs inner pytest sessions to test the strego pytest plugin."""

pytest_plugins = ["pytester"]
