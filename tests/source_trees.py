"""oauthguard's modules parsed with ``ast`` once a process, for the tests that read the
package's source (its architecture, the troubleshooting page). The trees are shared between
tests: read them, never change them."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "oauthguard"


def package_files() -> list[Path]:
    """Every module of the package, sorted (listed afresh on each call)."""
    return sorted(PACKAGE.rglob("*.py"))


def parsed(path: Path) -> ast.Module:
    """The module at ``path``, parsed once for as long as the file is unchanged."""
    return _parsed(path, path.stat().st_mtime_ns)


def nodes(path: Path) -> tuple[ast.AST, ...]:
    """Every node of the module at ``path``, in ``ast.walk`` order."""
    return _nodes(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=1024)
def _parsed(path: Path, mtime_ns: int) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@functools.lru_cache(maxsize=1024)
def _nodes(path: Path, mtime_ns: int) -> tuple[ast.AST, ...]:
    return tuple(ast.walk(_parsed(path, mtime_ns)))
