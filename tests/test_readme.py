"""The README's two set-up commands are the ones CI runs (.ci/run), so they cannot drift apart.

Command 1 (install and start) must create `.venv`, install `requirements.txt` into it and start
`streamlit run streamlit_app.py`, with the same interpreter / venv / requirements as .ci/run's
set-up; command 2 (the tests) must be, word for word, the command .ci/run runs after its
"# The README's test command" comment, and .ci/run must run nothing else after it.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI = ROOT / ".ci" / "run"
CI_MARKER = "# The README's test command"


def section(markdown: str, title: str) -> str:
    """The text of the `## title` section (up to the next level-2 heading)."""
    m = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    assert m, f"README.md has no '## {title}' section"
    return m.group(1)


def bash_blocks(text: str) -> list[list[str]]:
    """Fenced ```bash blocks: their non-blank, non-comment lines."""
    blocks = re.findall(r"^```bash\s*\n(.*?)^```", text, re.M | re.S)
    return [[ln.strip() for ln in b.splitlines() if ln.strip() and not ln.strip().startswith("#")] for b in blocks]


def readme_commands() -> tuple[str, str]:
    blocks = bash_blocks(section(README.read_text(), "Set-up"))
    assert len(blocks) == 2, f"the Set-up section should hold exactly two bash blocks, found {len(blocks)}"
    for b in blocks:
        assert len(b) == 1, f"each set-up block should be one command line, found {b}"
    return blocks[0][0], blocks[1][0]


def ci_lines() -> list[str]:
    return [ln.strip() for ln in CI.read_text().splitlines()]


def ci_test_command() -> str:
    lines = ci_lines()
    marker = [i for i, ln in enumerate(lines) if ln.startswith(CI_MARKER)]
    assert len(marker) == 1, f".ci/run should have one '{CI_MARKER}' comment"
    rest = [ln for ln in lines[marker[0] + 1:] if ln and not ln.startswith("#")]
    assert len(rest) == 1, f".ci/run should run exactly the README's test command after the comment, found {rest}"
    return rest[0]


def steps(command: str) -> list[list[str]]:
    """`a && b && c` -> [[a words], [b words], [c words]]."""
    return [shlex.split(part) for part in command.split("&&")]


def test_readme_test_command_is_what_ci_runs():
    _, test_cmd = readme_commands()
    assert test_cmd == ci_test_command()
    assert shlex.split(test_cmd)[:3] == [".venv/bin/python", "-m", "pytest"], test_cmd


def test_readme_install_command_builds_the_venv_ci_builds_and_starts_the_app():
    install, _ = readme_commands()
    parts = steps(install)
    assert len(parts) == 3, f"install, then start: {parts}"
    venv, pip, run = parts
    # 1. a venv in .venv, made by the Python the README asks for (CI's default interpreter)
    assert venv[1:] == ["-m", "venv", ".venv"], venv
    ci = "\n".join(ci_lines())
    m = re.search(r"PY=\$\{PYTHON:-([^}]+)\}", ci)
    assert m and venv[0] == m.group(1), f"README makes the venv with {venv[0]}, .ci/run with {m and m.group(1)}"
    assert '"$PY" -m venv .venv' in ci
    # 2. the requirements file CI installs, into that venv
    assert pip[0] in (".venv/bin/pip", ".venv/bin/python") and pip[-2:] == ["-r", "requirements.txt"], pip
    assert "install" in pip
    assert re.search(r"^\.venv/bin/python -m pip install (-q )?-r requirements\.txt$", ci, re.M), \
        ".ci/run no longer installs requirements.txt into .venv"
    assert (ROOT / "requirements.txt").is_file()
    # 3. the app, from the venv
    assert run == [".venv/bin/streamlit", "run", "streamlit_app.py"], run
    assert (ROOT / "streamlit_app.py").is_file()


def test_the_parsers_catch_a_drift():
    """The checks above fail when the README's test command differs from CI's."""
    setup = section(README.read_text(), "Set-up")
    _, test_cmd = readme_commands()
    assert test_cmd in setup
    drifted = setup.replace(test_cmd, test_cmd + " -x")
    assert bash_blocks(drifted)[1][0] != ci_test_command()
