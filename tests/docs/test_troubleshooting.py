"""Every refusal description the guard can produce is explained on the troubleshooting page.

The descriptions are collected from the source with ``ast``: string literals passed to the
``GuardError`` classes, module constants and local variables passed to them, and what the
functions that make descriptions return. An f-string is matched by its constant parts.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

from source_trees import package_files, parsed

import oauthguard

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "troubleshooting.md"
REFUSALS = {
    "GuardError",
    "MissingCredentials",
    "InvalidRequest",
    "InvalidToken",
    "InsufficientScope",
    "InsufficientUserAuthentication",
    "InvalidDPoPProof",
    "UseDPoPNonce",
    "TemporarilyUnavailable",
}
# Functions whose returned (or appended) strings become descriptions.
PRODUCERS = {"path_problem", "_describe", "_raw_path_problem", "method_problem", "miss", "misses"}
PRODUCERS |= {"_client_miss", "_actor_miss"}
# Pieces shorter than this are glue (", ", "; ") and say nothing on their own.
SHORTEST = 6


def constant_parts(node: ast.AST, names: dict[str, ast.AST]) -> Iterator[str]:
    """The constant text of a description expression, piece by piece."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.JoinedStr):
        for value in node.values:
            yield from constant_parts(value, names)
    elif isinstance(node, ast.FormattedValue):
        yield from constant_parts(node.value, names)
    elif isinstance(node, ast.BinOp):
        yield from constant_parts(node.left, names)
        yield from constant_parts(node.right, names)
    elif isinstance(node, ast.Name) and node.id in names:
        yield from constant_parts(names[node.id], names)


def assignments(tree: ast.AST) -> dict[str, ast.AST]:
    """name -> value, for every plain assignment in ``tree`` (module constants, locals)."""
    found: dict[str, ast.AST] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                found[target.id] = node.value
    return found


def module_level(tree: ast.Module) -> Iterator[tuple[str, ast.AST]]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                yield target.id, node.value
        elif (
            isinstance(node, ast.AnnAssign)
            and node.value is not None
            and isinstance(node.target, ast.Name)
        ):
            yield node.target.id, node.value


def produced(function: ast.AST, names: dict[str, ast.AST]) -> Iterator[str]:
    for node in ast.walk(function):
        if isinstance(node, ast.Return) and node.value is not None:
            yield from constant_parts(node.value, names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "append":
            for argument in node.args:
                yield from constant_parts(argument, names)


@functools.cache  # the source does not change while the tests run; callers only read it
def descriptions() -> dict[str, str]:
    """Each piece of description text -> where it is made."""
    found: dict[str, str] = {}
    trees = {path: parsed(path) for path in package_files()}
    # Module constants may be imported from another module: every module's are known.
    everywhere = {name: value for tree in trees.values() for name, value in module_level(tree)}
    for path, tree in trees.items():
        module_names = {**everywhere, **dict(module_level(tree))}
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            names = {**module_names, **assignments(function)}
            pieces: list[tuple[str, int]] = []
            if function.name in PRODUCERS:
                pieces += [(text, function.lineno) for text in produced(function, names)]
            for node in ast.walk(function):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                callee = node.func
                name = getattr(callee, "id", None) or getattr(callee, "attr", None)
                if name in REFUSALS:
                    pieces += [(text, node.lineno) for text in constant_parts(node.args[0], names)]
            for text, line in pieces:
                text = text.strip(" ;:")
                if len(text) >= SHORTEST:
                    found.setdefault(text, f"{path.relative_to(ROOT)}:{line}")
    return found


def test_the_collector_finds_descriptions_of_every_kind() -> None:
    found = descriptions()
    assert "the token has expired" in found  # a literal
    assert "the DPoP proof is longer than" in found  # an f-string's constant part
    assert "DPoP replay protection is unavailable; try again later" in found  # a constant
    assert "the metadata of" in found  # a local variable
    assert "an empty segment ('//')" in found  # what a producer returns
    assert "the token lacks the role" in found  # what a producer appends


def test_every_refusal_description_is_on_the_troubleshooting_page() -> None:
    page = PAGE.read_text(encoding="utf-8").replace("\\|", "|")
    missing = {text: where for text, where in descriptions().items() if text not in page}
    assert not missing, "not explained in docs/troubleshooting.md:\n" + "\n".join(
        f"  {where}: {text!r}" for text, where in sorted(missing.items(), key=lambda i: i[1])
    )


def site_url() -> str:
    """The docs site's address, as ``mkdocs.yml`` gives it."""
    for line in (ROOT / "mkdocs.yml").read_text(encoding="utf-8").splitlines():
        if line.startswith("site_url:"):
            return line.partition(":")[2].strip()
    raise AssertionError("mkdocs.yml has no site_url")


def test_every_refusal_kind_links_to_its_section_of_the_page() -> None:
    page = PAGE.read_text(encoding="utf-8")
    kinds = [oauthguard.GuardError, *vars(oauthguard).values()]
    for kind in kinds:
        if isinstance(kind, type) and issubclass(kind, oauthguard.GuardError):
            base, _, anchor = kind.docs.partition("#")
            assert base == site_url() + "troubleshooting/"
            assert f"{{ #{anchor} }}" in page, kind
