"""The command lines README.md and docs/*.md write are accepted by the CLI's parser as written.

Nothing is run. Every `python -m fer_core ...` is read from a code block (lines joined across a
trailing `\\`) or from inline code, cut at a shell comment, pipe or redirection, and handed to the
real parser (`fer_core.cli.main.build_parser().parse_args`). Placeholders (`<run-id>`, or a word in
capitals: `FILE`, `N`) stand for any one value of the right type; a placeholder command (`python -m fer_core <command> --help`) is tried with every
command; a bare command name in prose ("the Models page (and `python -m fer_core import`)") is a
mention: the command must exist. Inline option fragments (`--labels csv --scale symmetric`) must be
accepted by some command, its required arguments aside: the model table once wrote
`--scale -1-1`, which argparse refuses ("expected one argument").
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from fer_core.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PREFIX = "python -m fer_core"
PLACEHOLDER = "PLACEHOLDER"


@dataclass(frozen=True)
class Snippet:
    where: str  # "README.md:105"
    text: str  # the code as the document writes it
    argv: tuple[str, ...]  # the words after `python -m fer_core` (or the option fragment's words)
    inline: bool  # inline code in prose, not a code block
    lines: int = 1  # source lines (a code-block command continued with `\\` spans several)


def _code(text: str) -> list[tuple[int, str, bool, int]]:
    """(line number, code, inline, lines) per code-block line (continuations joined) and inline code span."""
    out: list[tuple[int, str, bool, int]] = []
    lines = text.splitlines()
    prose: list[tuple[int, str]] = []

    def flush() -> None:  # inline code may wrap onto the next line of its paragraph
        joined = "\n".join(line for _, line in prose)
        for m in re.finditer(r"`([^`]+)`", joined):
            line_no = prose[0][0] + joined.count("\n", 0, m.start())
            out.append((line_no, " ".join(m.group(1).split()), True, m.group(1).count("\n") + 1))
        prose.clear()

    in_block, i = False, 0
    while i < len(lines):
        line, line_no = lines[i], i + 1
        if line.lstrip().startswith("```"):
            flush()
            in_block = not in_block
        elif in_block:
            while line.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i].strip()
            out.append((line_no, line.strip(), False, i + 2 - line_no))
        elif line.strip():
            prose.append((line_no, line))
        else:
            flush()
        i += 1
    flush()
    return out


def _words(shell: str) -> tuple[str, ...]:
    """Shell words up to a comment, pipe, redirection or command separator; <placeholders> as one word."""
    shell = re.sub(r"<[A-Za-z][\w .:/-]*>", PLACEHOLDER, shell)  # <run-id>, <model>, <command>
    lexer = shlex.shlex(shell, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True  # "--scale=-1-1" and "../shared/data/fer2013.zip" stay whole; '#' comments
    words = []
    for word in lexer:
        if set(word) <= set("|&;<>()"):
            break
        words.append(word)
    return tuple(words)


def _argv(shell: str) -> tuple[str, ...]:
    rest = shell.split(PREFIX, 1)[1]
    listing = re.match(r"\s*(\w+(?:\|\w+)+)(?=\s|$)", rest)  # "data|train|evaluate": a list of commands
    return (listing.group(1),) if listing else _words(rest)


def _snippets() -> tuple[list[Snippet], list[Snippet]]:
    """(commands, inline option fragments) of every document."""
    commands, fragments = [], []
    for path in DOCS:
        for line_no, code, inline, lines in _code(path.read_text(encoding="utf-8")):
            where = f"{path.relative_to(ROOT)}:{line_no}"
            if PREFIX in code:
                commands.append(Snippet(where, code, _argv(code), inline, lines))
            elif inline and code.startswith("--"):
                fragments.append(Snippet(where, code, _words(code), inline, lines))
    return commands, fragments


COMMANDS, FRAGMENTS = _snippets()


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _is_placeholder(value: object) -> bool:
    return isinstance(value, str) and (value == PLACEHOLDER or re.fullmatch(r"[A-Z][A-Z0-9_]*", value) is not None)


class _OrPlaceholder:
    """An option's choices, also taking a placeholder."""

    def __init__(self, choices) -> None:
        self.choices = choices

    def __contains__(self, value: object) -> bool:
        return _is_placeholder(value) or value in self.choices

    def __iter__(self):
        return iter(self.choices)


def _placeholder_tolerant(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The parser, with every command's options taking a placeholder as a value of their type and choices."""

    def tolerant(convert):
        return lambda value: value if _is_placeholder(value) else convert(value)

    for sub in _subcommands(parser).values():
        for action in sub._actions:
            if action.type is not None:
                action.type = tolerant(action.type)
            if action.choices is not None:
                action.choices = _OrPlaceholder(action.choices)
    return parser


def _parse_error(argv: tuple[str, ...], parser: argparse.ArgumentParser | None = None) -> str | None:
    """None when the parser accepts argv (or shows its help), else argparse's message."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            _placeholder_tolerant(parser or build_parser()).parse_args(list(argv))
        except SystemExit as exc:
            if exc.code not in (0, None):  # 0: --help
                lines = err.getvalue().strip().splitlines()
                return lines[-1] if lines else f"exit {exc.code}"
    return None


def _fragment_error(words: tuple[str, ...]) -> str | None:
    """None when some command accepts these options (its required options and positionals aside)."""
    names = list(_subcommands(build_parser()))
    if len(words) == 1 and "=" not in words[0]:  # an option named in prose: `--no-progress`
        parser = build_parser()
        if any(words[0] in sub._option_string_actions for sub in _subcommands(parser).values()):
            return None
        return f"no command has the option {words[0]}"
    errors = []
    for name in names:
        parser = build_parser()
        sub = _subcommands(parser)[name]
        positionals = []
        for action in sub._actions:
            if action.option_strings:
                action.required = False
            elif action.nargs in (None, "+", 1):
                positionals.append(PLACEHOLDER)
        error = _parse_error((name, *positionals, *words), parser)
        if error is None:
            return None
        errors.append(f"{name}: {error}")
    return "; ".join(errors)


@pytest.mark.parametrize("cmd", COMMANDS, ids=[c.where for c in COMMANDS])
def test_documented_command_parses(cmd: Snippet) -> None:
    names = _subcommands(build_parser())
    assert cmd.argv, f"{cmd.where}: no command after {PREFIX!r} in {cmd.text!r}"
    first = cmd.argv[0]
    if "|" in first:  # a list of commands, e.g. "data|train|evaluate|predict"
        missing = [n for n in first.split("|") if n not in names]
        assert not missing, f"{cmd.where}: {cmd.text!r} names commands the CLI does not have: {missing}"
        return
    if first == PLACEHOLDER:  # `python -m fer_core <command> --help`: every command takes the rest
        for name in names:
            error = _parse_error((name, *cmd.argv[1:]))
            assert error is None, f"{cmd.where}: {cmd.text!r} as `{name}`: {error}"
        return
    if cmd.inline and len(cmd.argv) == 1:  # a mention of a command in prose
        assert first in names, f"{cmd.where}: {cmd.text!r}: no command {first!r} (commands: {', '.join(names)})"
        return
    error = _parse_error(cmd.argv)
    assert error is None, f"{cmd.where}: {cmd.text!r} is refused by the CLI's parser: {error}"


@pytest.mark.parametrize("fragment", FRAGMENTS, ids=[f.where for f in FRAGMENTS])
def test_documented_options_parse(fragment: Snippet) -> None:
    error = _fragment_error(fragment.argv)
    assert error is None, f"{fragment.where}: {fragment.text!r} is accepted by no command: {error}"


def test_the_documents_are_searched_for_commands() -> None:
    """The extraction finds the README's command lines (it cannot pass by finding none)."""
    assert len(COMMANDS) >= 20, [c.where for c in COMMANDS]
    parsed = [c for c in COMMANDS if not (c.inline and len(c.argv) == 1)]
    assert len(parsed) >= 15, [c.where for c in parsed]
    used = {c.argv[0] for c in parsed}
    assert {"data", "train", "evaluate", "predict", "runs", "import", "conventions", "export"} <= used, used
    continued = [c for c in COMMANDS if c.lines >= 3 and not c.inline]  # README's training recipes use `\\`
    assert continued and all(c.argv[-1] != "\\" for c in continued), continued
    assert any("--scale" in f.argv for f in FRAGMENTS), [f.text for f in FRAGMENTS]


def test_the_extraction_catches_what_argparse_refuses() -> None:
    """The old `--scale -1-1`: argparse reads -1-1 as an option, in a command and in a fragment."""
    doc = "Text `--labels csv\n--scale -1-1` wraps.\n\n```bash\npython -m fer_core import m.h5 --labels csv \\\n  --scale -1-1   # the fer package\n```\n"
    (first, (line_no, shell, inline, lines)) = _code(doc)
    assert first == (1, "--labels csv --scale -1-1", True, 2)
    assert (line_no, inline, lines) == (5, False, 2)
    assert _argv(shell) == ("import", "m.h5", "--labels", "csv", "--scale", "-1-1")
    assert "expected one argument" in _parse_error(_argv(shell))
    assert "expected one argument" in _fragment_error(_words(first[1]))
    assert _fragment_error(("--no-such-option",)) is not None
    assert _parse_error(_argv("python -m fer_core import m.h5 --labels csv --scale=-1-1")) is None
    assert _parse_error(_argv("python -m fer_core import <file> --labels csv --scale symmetric | tail")) is None
    assert _fragment_error(_words("--labels csv --scale symmetric")) is None
    # A placeholder takes any value ("--show N" for a number, "--format FORMAT"), a misspelt real value does not.
    assert _parse_error(_argv("python -m fer_core export RUN --format FORMAT --out DIR")) is None
    assert "invalid choice" in _parse_error(_argv("python -m fer_core export RUN --format tflite --out DIR"))
    assert "unknown pixel scaling" in _parse_error(_argv("python -m fer_core import FILE --labels csv --scale half"))
    assert _argv("FER_MODELS_DIR=x .venv/bin/python -m fer_core runs > out.txt") == ("runs",)
