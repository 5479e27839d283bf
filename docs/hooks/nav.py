"""MkDocs hook: a menu entry whose page is not in ``docs/`` yet is left out of the menu.

The identity-provider guides are listed in ``mkdocs.yml`` before each of them lands; until
then the entry would be a dead link.
"""

from __future__ import annotations

from typing import Any

from mkdocs.structure.nav import Link, Navigation, Section


def _keep(item: Any) -> bool:
    return not (isinstance(item, Link) and item.url.endswith(".md"))


def _prune(items: list[Any]) -> list[Any]:
    kept = []
    for item in items:
        if isinstance(item, Section):
            item.children = _prune(item.children)
        if _keep(item):
            kept.append(item)
    return kept


def on_nav(nav: Navigation, **_: Any) -> Navigation:
    """The menu without entries for pages that do not exist."""
    nav.items = _prune(nav.items)
    return nav
