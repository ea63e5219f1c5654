"""The command line: `python -m fer_core <command>` (parser and exit codes in cli.main; one module per
command group, on cli.common). Declares no API of its own (tests/test_layout.py)."""
