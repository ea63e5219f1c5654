"""The command line: `python -m fer_core <command>` (see cli.main)."""


from fer_core.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
