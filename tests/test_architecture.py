"""The package's shape: imports point one way, and only public modules have public names."""

from __future__ import annotations

import ast
from pathlib import Path

from source_trees import PACKAGE, nodes, package_files, parsed


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every oauthguard module ``path`` imports, anywhere in it: at the top, inside
    functions and under ``TYPE_CHECKING`` alike."""
    found: set[str] = set()
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in nodes(path):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("oauthguard")}


def graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in package_files()}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {target for target in imports_of(path) if target in modules}
        # Importing a module means importing its package's __init__ too, but a subpackage
        # importing its own parts is no cycle through the root.
        edges[name] = {target for target in targets if target != name}
    return edges


def cycle_in(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules around it, or None."""
    done: set[str] = set()
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> list[str] | None:
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target in on_stack:
                return [*stack[stack.index(target) :], target]
            if target not in done:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        on_stack.discard(node)
        done.add(node)
        return None

    for start in sorted(edges):
        if start not in done:
            found = visit(start)
            if found:
                return found
    return None


def test_no_import_cycles_not_even_under_type_checking() -> None:
    edges = graph()
    # The package root re-exports the public names; nothing inside imports it back.
    inward = sorted(name for name, targets in edges.items() if "oauthguard" in targets)
    assert inward == [], f"modules importing the package root: {inward}"
    edges.pop("oauthguard")
    assert cycle_in(edges) is None, " -> ".join(cycle_in(edges) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set()}) is None


#: Each layer may import only the layers below it (DESIGN.md "Layers").
LAYERS = [
    ("oauthguard._jose", "oauthguard._http", "oauthguard._wire", "oauthguard._telemetry"),
    ("oauthguard._verify", "oauthguard._introspection", "oauthguard._dpop"),
    ("oauthguard._core", "oauthguard._exchange"),
    ("oauthguard._asgi", "oauthguard._policy"),
]
PUBLIC = {
    "oauthguard",
    "oauthguard.django",
    "oauthguard.exchange",
    "oauthguard.fastapi",
    "oauthguard.litestar",
    "oauthguard.mcp",
    "oauthguard.providers",
    "oauthguard.redis",
    "oauthguard.testing",
}


def layer_of(module: str) -> int | None:
    for index, packages in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in packages):
            return index
    return None


def test_imports_point_down_the_layers() -> None:
    upward = []
    for module, targets in graph().items():
        own = layer_of(module)
        if own is None:
            continue
        for target in targets:
            theirs = layer_of(target)
            if theirs is None or theirs > own:
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_the_core_and_below_import_no_framework() -> None:
    frameworks = ("starlette", "fastapi", "mcp", "litestar", "django", "redis")
    found = []
    for path in package_files():
        module = module_name(path)
        if layer_of(module) is None or layer_of(module) >= 3:  # the ASGI adapter and up
            continue
        for node in nodes(path):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            found += [f"{module}: {n}" for n in names if n.split(".")[0] in frameworks]
    assert found == []


def test_only_the_documented_modules_are_public_and_each_has_all() -> None:
    public = {
        module_name(path)
        for path in package_files()
        if not any(part.startswith("_") for part in module_name(path).split(".")[1:])
    }
    assert public == PUBLIC
    for name in sorted(PUBLIC):
        path = PACKAGE.parent / (name.replace(".", "/") + ".py")
        if not path.exists():
            path = PACKAGE.parent / name.replace(".", "/") / "__init__.py"
        tree = parsed(path)
        assigned = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert "__all__" in assigned, f"{name} has no __all__"
