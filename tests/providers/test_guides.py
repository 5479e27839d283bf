"""The code in each provider guide runs as written: the presets it shows build (a wrong
argument would raise ``ConfigurationError``) and the guard takes them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.applications import Starlette

GUIDES = Path(__file__).resolve().parents[2] / "docs" / "providers"
NAMES = ["auth0", "entra", "okta", "keycloak", "cognito"]


def code_section(name: str) -> list[str]:
    """The Python blocks of the guide's "The code" section."""
    text = (GUIDES / f"{name}.md").read_text()
    section = text.split("## The code", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


@pytest.mark.parametrize("name", NAMES)
def test_the_guides_code_runs(name: str) -> None:
    blocks = code_section(name)
    assert blocks, f"docs/providers/{name}.md has no code in its 'The code' section"
    namespace: dict[str, object] = {"app": Starlette()}
    for block in blocks:
        exec(compile(block, f"docs/providers/{name}.md", "exec"), namespace)
    assert "providers" in namespace


def test_the_readme_and_the_providers_page_link_every_guide() -> None:
    readme = (GUIDES.parents[1] / "README.md").read_text()
    assert "(docs/providers/index.md)" in readme
    index = (GUIDES / "index.md").read_text()
    for name in NAMES:
        assert f"({name}.md)" in index


def blocks_of_testing(name: str) -> list[str]:
    """The Python blocks of the guide's "Testing without ..." section."""
    text = (GUIDES / f"{name}.md").read_text()
    section = text.split("## Testing without", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


@pytest.mark.parametrize("name", NAMES)
def test_the_guides_testing_code_mints_a_provider_shaped_token(name: str) -> None:
    namespace: dict[str, object] = {"app": Starlette()}
    for block in code_section(name) + blocks_of_testing(name):
        exec(compile(block, f"docs/providers/{name}.md", "exec"), namespace)
    token = namespace["token"]
    assert isinstance(token, str) and token.count(".") == 2
