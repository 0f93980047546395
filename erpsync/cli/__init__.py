"""The face: one module per command group; the only code that parses argv or exits."""

from erpsync.cli.main import cli, main

__all__ = ["cli", "main"]
