"""The layers hold (docs/ARCHITECTURE.md): deploy -> services -> shared, no service imports
another, domain and figure modules import no driver or framework, and no module imports itself
back through others at load time."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "services", "deploy")
# pure modules: rules and figures, testable without Kafka, MongoDB or HTTP
PURE = ("services.enrollment.domain", "services.sessions.domain", "services.evaluation.figures",
        "services.evaluation.queries", "services.evaluation.insights",
        "services.evaluation.triage", "shared.events", "shared.pseudonym")
DRIVERS = ("pymongo", "aiokafka", "faststream", "fastapi", "starlette", "httpx", "uvicorn")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, *, load_time_only: bool) -> set[str]:
    """Every module `name` imports (its project ones resolved to a module of MODULES)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if load_time_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return found


def _project(imported: set[str]) -> set[str]:
    return {m for m in imported if m.split(".")[0] in PACKAGES}


def test_shared_imports_no_service_and_no_tool():
    wrong = {(m, i) for m in MODULES if m.startswith("shared")
             for i in _project(_imports(m, load_time_only=False))
             if not i.startswith("shared")}
    assert wrong == set()


def test_no_service_imports_another_or_a_tool():
    wrong = set()
    for m in MODULES:
        if m.startswith("services."):
            own = ".".join(m.split(".")[:2])
            wrong |= {(m, i) for i in _project(_imports(m, load_time_only=False))
                      if not (i.startswith("shared") or i == own or i.startswith(own + "."))}
    assert wrong == set()


def test_pure_modules_import_no_driver_or_framework():
    assert set(PURE) <= set(MODULES)
    wrong = {(m, i) for m in PURE for i in _imports(m, load_time_only=False)
             if i.split(".")[0] in DRIVERS}
    assert wrong == set()


def test_no_import_cycle_at_load_time():
    graph = {m: {i for i in _project(_imports(m, load_time_only=True)) if i in MODULES and i != m}
             for m in MODULES}
    cycles, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []
