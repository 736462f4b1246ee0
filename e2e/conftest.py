"""Browser tests against the real app: `isengard up` (API + worker + embedded Redis, fast-test model) in Chromium.

The app runs as real processes on a free port with its own data dir; it is stopped by PID at the end. Chromium is
Debian's (`/usr/bin/chromium`), driven by Playwright for Python; no browser is downloaded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from isengard.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]
WEB_DIST = ROOT / "web" / "dist"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_TIMEOUT_S = 180


@dataclass
class RunningApp:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


def _bundle_is_fresh() -> bool:
    """The built bundle is newer than every source file, so the browser tests see the current code."""
    built = WEB_DIST / "index.html"
    if not built.exists():
        return False
    web = ROOT / "web"
    sources = [web / "index.html", web / "vite.config.ts", *(web / "src").rglob("*")]
    newest = max(path.stat().st_mtime for path in sources if path.is_file())
    return built.stat().st_mtime >= newest


def _ensure_web_bundle() -> None:
    if not _bundle_is_fresh():
        subprocess.run(["npm", "run", "build"], cwd=ROOT / "web", check=True)


def start_app(workdir: Path, **extra_env: str) -> RunningApp:
    port = free_port()
    data_dir = workdir / "data"
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith("ISENGARD_") and k not in {"REDIS_URL", "DATABASE_URL"}
    }
    env = {
        **inherited,
        "ISENGARD_DATA_DIR": str(data_dir),
        "ISENGARD_PORT": str(port),
        "ISENGARD_MODE": "fast-test",
        "ISENGARD_LOG_LEVEL": "WARNING",
        **extra_env,
    }
    log_path = workdir / "isengard.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "isengard.cli", "up"],
            cwd=workdir,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    app = RunningApp(url=f"http://127.0.0.1:{port}", data_dir=data_dir, process=process, log_path=log_path)
    token = extra_env.get("ISENGARD_API_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"isengard up exited with {process.returncode}:\n{app.log_tail()}")
        try:
            health = httpx.get(f"{app.url}/api/health", headers=headers, timeout=2).json()
            # Up means the API answers and a worker has registered: the flow tests need one.
            if health.get("workers", {}).get("count", 0) > 0:
                return app
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    stop_app(app)
    raise RuntimeError(f"isengard did not become healthy in {STARTUP_TIMEOUT_S} s:\n{app.log_tail()}")


def stop_app(app: RunningApp) -> None:
    """Ctrl-C semantics: SIGINT to `isengard up` (by its PID), which stops its children and Redis in order."""
    if app.process.poll() is None:
        app.process.send_signal(signal.SIGINT)
        try:
            app.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            app.process.kill()
            app.process.wait()


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    _ensure_web_bundle()
    running = start_app(tmp_path_factory.mktemp("isengard"))
    yield running
    stop_app(running)


@pytest.fixture(scope="module")
def takeover_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """An app of the module's own with a short lease and heartbeat, so a killed worker's run is taken over in
    seconds."""
    _ensure_web_bundle()
    running = start_app(
        tmp_path_factory.mktemp("isengard-takeover"), ISENGARD_LEASE_SECONDS="6", ISENGARD_HEARTBEAT_SECONDS="1"
    )
    yield running
    stop_app(running)


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's Chromium is not installed: run `make chromium`")
    launched = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield launched
    launched.close()


@dataclass
class ConsoleWatch:
    """Console errors and uncaught page errors seen while a test ran."""

    errors: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(part in message.text for part in self.ignore):
            self.errors.append(f"console: {message.text} @ {message.location.get('url', '')}")

    def on_page_error(self, error: Exception) -> None:
        self.errors.append(f"pageerror: {error}")


@pytest.fixture()
def console() -> ConsoleWatch:
    return ConsoleWatch()


@pytest.fixture()
def page(browser: Browser, console: ConsoleWatch) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, device_scale_factor=1)
    context.set_default_timeout(15_000)
    new_page = context.new_page()
    new_page.on("console", console.on_console)
    new_page.on("pageerror", console.on_page_error)
    yield new_page
    context.close()
