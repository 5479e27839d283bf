"""Every ``pip install`` the README and the docs show works from a checkout: oauthguard has no
release on PyPI, so a line naming ``oauthguard`` from an index fails for a newcomer, and an
extra that ``pyproject.toml`` does not define installs nothing."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
EXTRAS = set(
    tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
)


def install_targets(text: str) -> list[str]:
    """The package arguments of each ``pip install`` in ``text``."""
    targets = []
    for match in re.finditer(r"pip install ([^`\n#&]*)", text):
        words = shlex.split(match.group(1).replace("`", ""))
        targets += [word for word in words if not word.startswith("-")]
    return targets


def test_the_pages_show_pip_installs() -> None:
    assert install_targets((ROOT / "README.md").read_text())


def test_every_install_is_of_this_checkout_with_extras_that_exist() -> None:
    for page in PAGES:
        for target in install_targets(page.read_text()):
            found = re.fullmatch(r"\.(?:\[([a-z,]+)\])?", target)
            assert found, f"{page.relative_to(ROOT)}: pip install {target!r} is not this checkout"
            extras = set(filter(None, (found.group(1) or "").split(",")))
            assert extras <= EXTRAS, f"{page.relative_to(ROOT)}: unknown extras {extras - EXTRAS}"


def test_the_check_catches_a_package_from_an_index() -> None:
    assert install_targets("pip install 'oauthguard[mcp]'") == ["oauthguard[mcp]"]
    assert not re.fullmatch(r"\.(?:\[([a-z,]+)\])?", "oauthguard[mcp]")
