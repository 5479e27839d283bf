"""Swagger UI's Authorize, in a real browser: examples/fastapi_app.py and a TestIssuer on
loopback, headless chromium driven by Selenium through /docs.

OAUTHGUARD_SWAGGER_SCREENSHOT=docs/img/swagger-authorized.png makes the test save the
authorized page there (how the docs' picture is made).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs

import pytest
from support import free_port, npm_installed, require_service, serve

from oauthguard.testing import TestIssuer

try:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the test extra installs it
    if os.environ.get("OAUTHGUARD_REQUIRE_SERVICES"):
        raise
    pytest.skip("selenium is not installed: pip install -e '.[browser]'", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SWAGGER_UI_DIST = HERE / "node_modules" / "swagger-ui-dist"
#: Generous for a loaded 2-core machine, and bounded.
WAIT = 60
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1200",
]


class RecordingIssuer:
    """The issuer's ASGI app, recording each request's method, path, query and Origin."""

    def __init__(self, issuer: TestIssuer) -> None:
        self.issuer = issuer
        self.seen: list[tuple[str, str, dict[str, list[str]], str | None]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            origin = dict(scope["headers"]).get(b"origin")
            query = parse_qs(scope["query_string"].decode())
            self.seen.append(
                (scope["method"], scope["path"], query, origin.decode() if origin else None)
            )
        await self.issuer.app(scope, receive, send)

    def requests_to(self, method: str, path: str) -> list[tuple[dict[str, list[str]], str | None]]:
        return [(query, origin) for m, p, query, origin in self.seen if (m, p) == (method, path)]


def example() -> ModuleType:
    """examples/fastapi_app.py, imported as a module."""
    spec = importlib.util.spec_from_file_location(
        "fastapi_app_example", ROOT / "examples" / "fastapi_app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class LiveResponse:
    """What Swagger UI shows of the response to "Execute"."""

    status: str
    body: str


class SwaggerPage:
    """Swagger UI's /docs page, driven as a person would, with explicit waits only."""

    def __init__(self, driver: WebDriver, timeout: float) -> None:
        self.driver = driver
        self.wait = WebDriverWait(driver, timeout)

    def open(self, url: str) -> None:
        self.driver.get(url)
        self.clickable(".auth-wrapper button.authorize")

    def clickable(self, css: str, within: WebElement | None = None) -> WebElement:
        """The first element ``css`` selects (inside ``within``), once it can be clicked."""

        def found(_: Any) -> WebElement | bool:
            elements = (within or self.driver).find_elements(By.CSS_SELECTOR, css)
            usable = [e for e in elements if e.is_displayed() and e.is_enabled()]
            return usable[0] if usable else False

        element: WebElement = self.wait.until(found, f"nothing clickable at {css!r}")
        return element

    def authorize(self, scopes: list[str]) -> None:
        """Authorize with ``scopes`` ticked: the issuer's login opens in a popup, approves
        and redirects back to /docs/oauth2-redirect, which hands the code to the page; the
        page exchanges it for a token."""
        self.clickable(".auth-wrapper button.authorize").click()
        dialog = self.clickable(".modal-ux")
        for scope in scopes:
            box = dialog.find_element(By.CSS_SELECTOR, f'input[data-value="{scope}"]')
            self.clickable(f'label[for="{box.get_attribute("id")}"]', dialog).click()
            self.wait.until(lambda _, box=box: box.is_selected(), f"{scope} not ticked")
        main = self.driver.current_window_handle
        self.clickable(".auth-btn-wrapper button.authorize", dialog).click()

        def outcome(driver: Any) -> str | bool:
            if dialog.find_elements(By.CSS_SELECTOR, ".errors"):
                return "error"
            logout = dialog.find_elements(By.XPATH, ".//button[normalize-space()='Logout']")
            return "authorized" if logout and len(driver.window_handles) == 1 else False

        result = self.wait.until(outcome, "Swagger UI was neither authorized nor refused")
        self.driver.switch_to.window(main)
        assert result == "authorized", dialog.find_element(By.CSS_SELECTOR, ".errors").text
        self.clickable("button.btn-done", dialog).click()
        self.wait.until(expected_conditions.invisibility_of_element(dialog))

    def execute(self, operation_id: str, parameters: Mapping[str, str] = {}) -> LiveResponse:
        """Open the operation, "Try it out", fill ``parameters`` in, "Execute"."""
        block = self.driver.find_element(By.ID, f"operations-default-{operation_id}")
        self.clickable(".opblock-summary-control", block).click()
        self.clickable("button.try-out__btn", block).click()
        for name, value in parameters.items():
            self.clickable(f'input[placeholder="{name}"]', block).send_keys(value)
        self.clickable("button.execute", block).click()
        row = self.clickable(".live-responses-table tr.response", block)
        status = row.find_element(By.CSS_SELECTOR, ".response-col_status").text.split()[0]
        body = row.find_element(By.CSS_SELECTOR, ".response-col_description").text
        return LiveResponse(status, body)

    def save_screenshot(self, path: Path) -> None:
        self.driver.execute_script("window.scrollTo(0, 0)")
        path.parent.mkdir(parents=True, exist_ok=True)
        assert self.driver.save_screenshot(str(path)), path


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """Headless chromium with a new empty profile, through Debian's chromedriver."""
    require_service("chromium")
    require_service("chromedriver")
    profile = tempfile.mkdtemp(prefix="oauthguard-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, RecordingIssuer]]:
    """The example app (Swagger UI's files served locally) and its TestIssuer, as the
    example's demo sets them up; the app's URL and the recorded issuer."""
    npm_installed(HERE, "swagger-ui-dist")
    monkeypatch.setenv("SWAGGER_UI_DIST", str(SWAGGER_UI_DIST))
    fastapi_app = example()
    issuer_port, app_port = free_port(), free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{issuer_port}")
    app_url = f"http://127.0.0.1:{app_port}"
    issuer.register_swagger_client(app_url, client_id=fastapi_app.DOCS_CLIENT)
    recording = RecordingIssuer(issuer)
    app = fastapi_app.build(app_url + "/orders", issuer.issuer)
    with serve(recording, port=issuer_port), serve(app, port=app_port):
        yield app_url, recording


def test_swagger_ui_authorizes_then_calls_with_the_token(
    browser: WebDriver, servers: tuple[str, RecordingIssuer]
) -> None:
    app_url, issuer = servers
    page = SwaggerPage(browser, WAIT)
    page.open(app_url + "/docs")
    page.authorize(scopes=["orders:read"])

    # The authorization request carried the API as RFC 8707 resource and as Auth0's audience.
    ((query, _),) = issuer.requests_to("GET", "/authorize")
    assert query["resource"] == [app_url + "/orders"]
    assert query["audience"] == [app_url + "/orders"]
    assert query["code_challenge_method"] == ["S256"] and query["scope"] == ["orders:read"]
    # The page exchanged the code itself, across origins: a preflight, then the POST.
    assert [origin for _, origin in issuer.requests_to("OPTIONS", "/token")] == [app_url]
    assert [origin for _, origin in issuer.requests_to("POST", "/token")] == [app_url]

    listed = page.execute("list_orders_orders_get")
    assert listed.status == "200"
    assert '"reader": "user-1"' in listed.body
    screenshot = os.environ.get("OAUTHGUARD_SWAGGER_SCREENSHOT")
    if screenshot:
        page.save_screenshot(Path(screenshot))

    refused = page.execute("add_order_orders_post", parameters={"item": "tea"})
    assert refused.status == "403"
    assert "insufficient_scope" in refused.body
