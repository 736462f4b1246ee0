"""Signing in: with ISENGARD_API_TOKEN set the app shows a login page first, refuses a wrong token with a
sentence, lets the right one in (an HttpOnly session cookie, never the token in the page) and signs out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from e2e.conftest import ConsoleWatch, RunningApp, start_app, stop_app
from e2e.helpers import screenshot_path

TOKEN = "browser-test-token-5f0c2a"


@pytest.fixture(scope="module")
def protected_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    running = start_app(tmp_path_factory.mktemp("isengard-auth"), ISENGARD_API_TOKEN=TOKEN)
    yield running
    stop_app(running)


def test_login_page_then_the_app_then_sign_out(page: Page, protected_app: RunningApp, console: ConsoleWatch) -> None:
    # The refused login answers 401; the browser logs that as a failed resource, which is expected here.
    console.ignore.append("status of 401")
    page.goto(protected_app.url + "/characters")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.get_by_role("navigation")).to_have_count(0)

    page.get_by_label("API token").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert").filter(has_text="Not signed in")
    expect(alert).to_contain_text("That token is not right")
    assert "{" not in alert.inner_text()
    page.screenshot(path=screenshot_path("login_wrong_token"), full_page=True)

    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Characters")
    expect(page.get_by_text("No characters yet")).to_be_visible()
    expect(page.get_by_test_id("health-panel")).to_contain_text("Workers")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert any(c["httpOnly"] for c in cookies.values()), cookies
    assert TOKEN not in page.content()

    # The session survives a reload; signing out brings the login back.
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Characters")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert console.errors == []
