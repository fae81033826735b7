"""Command groups beyond the engine's (registered into the `edefter` parser by cli.py)."""

REGISTER: list = []
