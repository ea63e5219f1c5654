"""fer_core's layout holds its architecture (docs/DESIGN.md, "Packages"): small modules, no import
circle, each package importing only what it may."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.cli_helpers import ROOT

PKG = ROOT / "fer_core"
MAX_LINES = 320

# Foundation modules at the top of fer_core: anyone may import them; they import only each other.
FOUNDATION = {"fer_core", "fer_core.errors", "fer_core.labels", "fer_core.paths", "fer_core.preprocess",
              "fer_core.colors", "fer_core.charts", "fer_core.quiet_import", "fer_core.settings",
              "fer_core.calibration"}
# package -> the fer_core packages it may import besides itself and the foundation
ALLOWED = {
    "fer_core.data": set(),
    "fer_core.store": {"fer_core.data"},
    "fer_core.training": {"fer_core.data", "fer_core.store"},
    "fer_core.inference": {"fer_core.data", "fer_core.store"},
    "fer_core.corpus": {"fer_core.data", "fer_core.store", "fer_core.inference"},
    "fer_core.cli": {"fer_core.data", "fer_core.store", "fer_core.training", "fer_core.inference", "fer_core.corpus"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The fer_core module an import names (a `from pkg import submodule` counts as the submodule)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """Every fer_core module `module` imports, at module level or inside functions (a lazy import is
    still a dependency)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import submodule` imports the submodule; `from pkg import name`, the package
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                     for a in node.names]
        for name in names:
            if name == "fer_core" or name.startswith("fer_core."):
                target = _resolve(name)
                # a package's own __init__ is imported before any of its modules: not a dependency edge
                if target and target != module and not module.startswith(target + "."):
                    found.add(target)
    return found


def _package(module: str) -> str:
    """fer_core.store.runs -> fer_core.store; foundation modules are their own 'package'."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or module in ALLOWED else module


def test_no_module_is_over_the_limit() -> None:
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_import_circle() -> None:
    graph = {m: imports_of(m) for m in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for dep in sorted(graph[m]):
            if state.get(dep) == 1:
                circle = path[path.index(dep):] + [dep]
                pytest.fail("import circle: " + " -> ".join(circle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[m] = 2

    for m in MODULES:
        if m not in state:
            visit(m)


def test_the_cycle_check_finds_a_circle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The walker sees lazy imports: a function-level import that closes a loop is reported."""
    fake = {"fer_core.a": "def f():\n    from fer_core.b import g\n", "fer_core.b": "import fer_core.a\n"}
    for name, text in fake.items():
        path = tmp_path / f"{name.split('.')[-1]}.py"
        path.write_text(text)
        monkeypatch.setitem(MODULES, name, path)
    assert imports_of("fer_core.a") == {"fer_core.b"} and imports_of("fer_core.b") == {"fer_core.a"}
    with pytest.raises(pytest.fail.Exception, match="import circle"):
        test_no_import_circle()


def test_packages_import_only_what_they_may() -> None:
    broken = []
    for module in MODULES:
        if module == "fer_core.__main__":
            continue  # `python -m fer_core`: runs the CLI
        pkg = _package(module)
        for dep in imports_of(module):
            dep_pkg = _package(dep)
            if dep_pkg == pkg or dep in FOUNDATION:
                continue
            if pkg in FOUNDATION or dep_pkg not in ALLOWED.get(pkg, set()):
                broken.append(f"{module} imports {dep}")
    assert not broken, "imports against docs/DESIGN.md's rule:\n" + "\n".join(broken)


def test_cli_commands_share_one_helper_module_not_each_other() -> None:
    commands = [m for m in MODULES if m.startswith("fer_core.cli.") and m not in ("fer_core.cli.common", "fer_core.cli.main")]
    assert len(commands) >= 4
    for m in commands:
        cli_deps = {d for d in imports_of(m) if d.startswith("fer_core.cli")}
        assert cli_deps <= {"fer_core.cli.common"}, f"{m} imports {cli_deps}"


def test_nothing_in_fer_core_imports_streamlit() -> None:
    offenders = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "streamlit" or n.startswith(("streamlit.", "streamlit_webrtc")) for n in names):
                offenders.append(module)
    assert not offenders


def test_design_doc_states_the_rule_the_tests_hold() -> None:
    """docs/DESIGN.md's package table names every package and what it may import, as ALLOWED does."""
    text = (ROOT / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    for pkg, allowed in ALLOWED.items():
        row = next((ln for ln in text.splitlines() if ln.startswith(f"| `{pkg}`")), None)
        assert row, f"docs/DESIGN.md has no row for {pkg}"
        may = row.split("|")[3]
        for other in ALLOWED:
            short = f"`{other}`"
            assert (short in may) == (other in allowed), f"{pkg}: DESIGN.md says {may.strip()!r}"


@pytest.mark.parametrize("package", ["fer_core.store", "fer_core.training", "fer_core.inference", "fer_core.corpus", "fer_core.cli"])
def test_packages_without_an_api_declare_none(package: str) -> None:
    """Their callers import from the defining module; an __init__ that listed names nobody used
    would drift from the code."""
    init = ROOT / package.replace(".", "/") / "__init__.py"
    body = [n for n in ast.parse(init.read_text(encoding="utf-8")).body
            if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]  # the docstring
    assert body == [], f"{init} has code besides its docstring"


def test_the_data_api_is_imported_from_the_package() -> None:
    """fer_core.data's __all__ is its API: outside the package, those names come from `fer_core.data`."""
    import fer_core.data as data

    found = []
    for path in [*MODULES.values(), *ROOT.glob("tests/**/*.py"), *ROOT.glob("ui/*.py"), *ROOT.glob("app_pages/*.py"),
                 *ROOT.glob("benchmarks/*.py"), *ROOT.glob("docs/*.py")]:
        if path.is_relative_to(ROOT / "fer_core" / "data"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fer_core.data."):
                found += [f"{path.relative_to(ROOT)}:{node.lineno} {a.name}" for a in node.names if a.name in data.__all__]
    assert not found, "import these from fer_core.data:\n" + "\n".join(found)


def test_importing_the_packages_imports_no_tensorflow() -> None:
    import subprocess
    import sys

    code = ("import sys, fer_core.store, fer_core.training, fer_core.inference, fer_core.cli; "
            "print('tensorflow' in sys.modules, 'cv2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False"]


def private_imports(paths: list[Path]) -> list[str]:
    """`from fer_core.x import _name` anywhere in `paths` (a leading underscore means: this module's own)."""
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fer_core"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{path.name}:{node.lineno} imports {node.module}.{alias.name}")
    return found


def test_no_private_name_is_imported_across_modules() -> None:
    """A name with a leading underscore is its module's own business: fer_core, the app, the benchmarks
    and the docs' tools import only public names (what another module needs is made public)."""
    paths = [*PKG.rglob("*.py"), *(ROOT / "app_pages").glob("*.py"), *(ROOT / "ui").glob("*.py"),
             ROOT / "streamlit_app.py", *(ROOT / "benchmarks").glob("*.py"), *(ROOT / "docs").glob("*.py")]
    assert private_imports(paths) == []


def test_the_private_import_check_finds_one(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text("from fer_core.store.layout import _private\nfrom fer_core.labels import FER_LABELS\n")
    assert len(private_imports([planted])) == 1


def environment_reads(paths: list[Path]) -> list[str]:
    """`os.environ.get(...)`, `os.getenv(...)` and `os.environ[...]` reads (setdefault and copies for a child
    process are not settings)."""
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            target = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                target = ast.unparse(node.func)
            elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
                target = ast.unparse(node.value)
            if target in ("os.environ.get", "os.getenv", "os.environ"):
                found.append(f"{path.name}:{node.lineno}")
    return found


def test_the_environment_is_read_in_one_module() -> None:
    """fer_core.settings names and parses every environment variable; nothing else in fer_core reads one."""
    paths = [p for p in PKG.rglob("*.py") if p.name != "settings.py"]
    assert environment_reads(paths) == []


def test_the_environment_check_finds_a_read(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text("import os\na = os.environ.get('X')\nb = os.environ['Y']\nos.environ.setdefault('Z', '1')\n")
    assert len(environment_reads([planted])) == 2


def test_tests_share_code_through_helpers_and_fixtures() -> None:
    """A test module never imports another (helpers live in *_helpers.py, shared state in conftest
    fixtures), and no test file keeps a module-global cache (`global`): a fixture's scope says
    how long a trained model lives."""
    found = []
    for path in ROOT.glob("tests/**/*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").rpartition(".")[2].startswith("test_"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}")
            elif isinstance(node, ast.Import) and any(a.name.rpartition(".")[2].startswith("test_") for a in node.names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports a test module")
            elif isinstance(node, ast.Global):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} global {', '.join(node.names)}")
    assert not found, "\n".join(found)
