"""The layers stay visible: imports point one way, nothing imports in a circle, privates stay private.

server -> core -> upstream -> the base (catalog, clock, config, errors, logs, telemetry); the sandbox stands apart
and shares only the base. Imports under `if TYPE_CHECKING:` count too: a cycle there is still a
knot a reader has to untie.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cutout_mcp"
BASE = {"catalog", "clock", "config", "errors", "logs", "telemetry"}
ENTRY = {"cli", "demo", "sandbox_mode", "__main__", "bundle"}
LAYER_RANK = {"base": 0, "upstream": 1, "core": 2, "server": 3}
"""A module may import its own layer and those ranked below it."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top in BASE or top == "":
        return "base"
    if top in ENTRY:
        return "entry"
    return top


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported, names taken) for every `import`/`from` of this package in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
    return [(m, names) for m, names in found if m == "cutout_mcp" or m.startswith("cutout_mcp.")]


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def targets(module: str, names: list[str]) -> list[str]:
    """The modules an import really reaches (`from cutout_mcp.core import videos` reaches core.jobs.videos)."""
    reached = [f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES]
    return reached or [module]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_layers(module: str) -> None:
    mine = layer(module)
    for imported, names in imports(MODULES[module]):
        for target in targets(imported, names):
            theirs = layer(target)
            if mine == "entry" or theirs == "base" or theirs == mine:
                continue
            if mine == "sandbox" or theirs == "sandbox":
                pytest.fail(f"{module} imports {target}: the sandbox shares only the base modules")
            assert mine in LAYER_RANK, f"{module} is in no layer"
            assert LAYER_RANK[theirs] < LAYER_RANK[mine], f"{module} ({mine}) imports {target} ({theirs})"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer(m) in ("upstream", "core", "sandbox", "base")))
def test_only_the_server_layer_speaks_mcp(module: str) -> None:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert node.module.split(".")[0] not in ("mcp", "mcp_types"), f"{module} imports {node.module}"
        elif isinstance(node, ast.Import):
            assert all(a.name.split(".")[0] not in ("mcp", "mcp_types") for a in node.names), module


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_another_modules_private_names(module: str) -> None:
    for imported, names in imports(MODULES[module]):
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        assert not private, f"{module} imports {private} from {imported}"


def test_nothing_imports_in_a_circle() -> None:
    graph = {
        m: {t for i, n in imports(p) for t in targets(i, n) if t in MODULES and t != m} for m, p in MODULES.items()
    }
    # a package's __init__ re-exporting its own members is not a cycle of meaning
    graph = {
        m: {t for t in deps if not m.startswith(t + ".") and not t.startswith(m + ".")} for m, deps in graph.items()
    }
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


# --- what start-up imports -------------------------------------------------------------------------

DEFERRED = (
    "httpx",  # the API, download, pre-flight and introspection clients: with their first request
    "httpcore",
    "cutout_mcp.core.inputs.netguard",  # the SSRF guard: with the first fetch of an image or result
    "PIL",  # pictures: with the first check, preview or contact sheet
    "av",
    "obstore",  # a staging bucket: only when one is set
    "psycopg",  # PostgreSQL: only when CUTOUT_DATABASE_URL names it
    "psycopg_pool",
    "tomllib",  # an allowances file: only when one is set
    "cutout_mcp.sandbox",  # only in sandbox mode
    "cutout_mcp.server.tasks.wire",  # the task shapes: with the first task
    "cutout_mcp.upstream.models",  # cutout.pro's payloads: with the first call to it
)
START = """
import sys, anyio
from mcp import Client
import cutout_mcp.cli
from cutout_mcp.config import Settings
from cutout_mcp.server import build_server

async def start() -> None:
    async with Client(build_server(Settings(api_key="key", state_dir=sys.argv[1]))) as client:
        assert (await client.list_tools()).tools

anyio.run(start)
print(" ".join(name for name in sys.argv[2:] if name in sys.modules))
"""


def test_start_up_imports_only_what_initialize_and_tools_list_need(tmp_path: Path) -> None:
    """Cold start (`bench/cold_start.py`) is paid by every client that spawns the server: what answering
    `initialize` and `tools/list` does not need is imported when first used."""
    done = subprocess.run(
        [sys.executable, "-c", START, str(tmp_path), *DEFERRED], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [], "imported at start-up although nothing there uses them"


HALL_LIMIT = 18
"""At most this many loose modules in one package (httpx's flat package holds 17); past it, the package
is a hall a newcomer has to learn by heart, and is split into rooms named for what a change is about."""
PACKAGES = sorted(path.parent for path in PACKAGE.rglob("__init__.py") if "__pycache__" not in path.parts)


@pytest.mark.parametrize("package", PACKAGES, ids=lambda path: str(path.relative_to(PACKAGE.parent)))
def test_no_package_is_a_hall_of_loose_modules(package: Path) -> None:
    loose = sorted(p.name for p in package.glob("*.py") if p.name != "__init__.py")
    assert len(loose) <= HALL_LIMIT, (
        f"{package.relative_to(PACKAGE.parent)} holds {len(loose)} loose modules (at most {HALL_LIMIT}): "
        "group them into sub-packages by what a change is about, each with a docstring saying what belongs there"
    )


@pytest.mark.parametrize("package", PACKAGES, ids=lambda path: str(path.relative_to(PACKAGE.parent)))
def test_every_package_says_what_belongs_in_it(package: Path) -> None:
    docstring = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8")))
    assert docstring, f"{package.relative_to(PACKAGE.parent)}/__init__.py has no docstring saying what belongs there"
