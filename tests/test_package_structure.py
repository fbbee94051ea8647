"""The package's joins, read from its source with ``ast``: no module imports a ``_``-prefixed module of another
package, and no import cycle exists, counting imports under ``TYPE_CHECKING`` and inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "airflow_provider_smsnexus"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module of the package that ``path`` imports, wherever the import statement stands."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    here = module_name(path).split(".")
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_package else here[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith(PACKAGE)}


def graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in ROOT.rglob("*.py")}
    return {
        name: {target for target in imports_of(path) if target in paths} - {name}
        for name, path in paths.items()
    }


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def test_no_module_imports_a_private_module_of_another_package():
    crossings = sorted(
        f"{source} imports {target}"
        for source, targets in graph().items()
        for target in targets
        if target.rsplit(".", 1)[-1].startswith("_")
        and not target.endswith("__init__")
        and package_of(source) != package_of(target)
    )

    assert crossings == []


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def test_cycles_finds_a_cycle_it_is_shown():
    # the checker itself, on a hand-made graph: a -> b -> c -> a is one cycle, d hangs off it
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

    assert cycles(edges) == [["a", "b", "c"]]


def test_no_import_cycle_even_under_type_checking():
    # a package's __init__ importing its own modules is how a package exposes them, not a cycle of jobs
    edges = {
        source: {target for target in targets if not (source.startswith(target + ".") and target != PACKAGE)}
        for source, targets in graph().items()
    }

    assert cycles(edges) == []


def defined_names(path: Path) -> set[str]:
    """The names a module defines at its top level (functions, classes, assignments), not those it imports."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                elements = target.elts if isinstance(target, ast.Tuple) else [target]
                names.update(element.id for element in elements if isinstance(element, ast.Name))
    return names


def test_every_name_is_imported_from_the_module_that_defines_it():
    # one import path per name: no re-exports, in the package, its tests, examples, scripts and benchmarks
    modules = {module_name(path): defined_names(path) for path in ROOT.rglob("*.py")}
    sources = [
        path
        for folder in (PACKAGE, "tests", "dags", "scripts", "bench")
        for path in (ROOT.parent / folder).rglob("*.py")
    ]
    elsewhere = sorted(
        f"{path.relative_to(ROOT.parent)}:{node.lineno} imports {alias.name} from {node.module}"
        for path in sources
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and not node.level and node.module in modules
        for alias in node.names
        if alias.name not in modules[node.module] and f"{node.module}.{alias.name}" not in modules
    )

    assert elsewhere == []


def test_a_modules_all_lists_only_what_it_defines():
    listed_elsewhere = {}
    for path in ROOT.rglob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(
                getattr(t, "id", None) == "__all__" for t in node.targets
            ):
                missing = sorted({ast.literal_eval(e) for e in node.value.elts} - defined_names(path))
                if missing:
                    listed_elsewhere[module_name(path)] = missing

    assert listed_elsewhere == {}
