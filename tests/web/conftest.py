"""Browser-test fixtures: Debian's chromium through Playwright, and a real ASGI server over the test database."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings
from django.db import connection

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture
def artifacts() -> Path:
    """Where browser tests leave screenshots and logs for CI to keep (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -r requirements/dev.txt)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.fixture
def browser_page(live_asgi: str):
    """A page in headless Debian chromium (no Playwright browser download), at the live server's origin.

    Locally a missing browser skips with the reason; in CI it fails, so the test can never silently stop
    running there. Function-scoped and set up after live_asgi: Playwright's sync API keeps an event loop
    running in this thread, which makes Django refuse ORM calls, so it must be closed before pytest-django
    flushes the database (and tests must talk to the server over HTTP while it is open)."""
    missing = _missing_browser()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_asgi, viewport={"width": 1100, "height": 1400})
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def _database_env() -> dict[str, str]:
    """Point the server process at the database pytest-django created (data committed by transactional tests)."""
    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return {"SQLITE_PATH": str(name)}
    url = urlsplit(settings.DATABASE_URL)
    return {"DATABASE_URL": url._replace(path=f"/{name}").geturl()}


def _wait_until_serving(base: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base}/health/live", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not serving after {timeout_s} s:\n{log.read_text()[-4000:]}")


@pytest.fixture
def live_asgi(transactional_db, tmp_path) -> Iterator[str]:
    """daphne (as `make run` serves) in a child process, with its in-process Dramatiq worker, on a free port.

    pytest-django's live_server is WSGI-only (no WebSockets), so the real ASGI application runs here. The
    listening socket is bound first and handed over with --fd, so no other process can take the port.
    Function-scoped: the server stops before pytest-django flushes the database."""
    media = tmp_path / "media"
    media.mkdir()
    env = {**os.environ, **_database_env(), "EMBEDDED_WORKER": "1", "MEDIA_ROOT": str(media)}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "--fd", str(listener.fileno()), "config.asgi:application"],
            cwd=settings.BASE_DIR,
            env=env,
            pass_fds=[listener.fileno()],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    listener.close()  # The child holds its own copy.
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base, process, log)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # Keep the server's log beside the screenshot: it explains a failure in CI.
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "server.log").write_bytes(log.read_bytes())
