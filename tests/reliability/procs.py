"""Real processes for the chaos suite: uvicorn, rundramatiq, requeue and redis-server subprocesses; /proc memory."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
UVICORN = str(Path(sys.executable).with_name("uvicorn"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out.extend(int(c) for c in (task / "children").read_text().split())
    return out


def descendants(pid: int) -> list[int]:
    found, todo = [], children(pid)
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children(current))
    return found


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def status_kb(pid: int, key: str) -> int:
    """One Vm*/Rss* line of /proc/<pid>/status in kB (0 once the process is gone)."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.02):
    """Poll `predicate` until it returns a truthy value (returned) or fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


class Proc:
    """A subprocess in its own session (so its whole group can be signalled), output to a log file."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.pid = self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        if not self.log.closed:
            self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM the group, SIGKILL it after `timeout_s`; also reap anything left in the group."""
        if self.running():
            self.signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout_s)
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.log.close()


class Server(Proc):
    """uvicorn serving config.asgi:application on 127.0.0.1:<port>."""

    def __init__(self, env: dict[str, str], log_dir: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [UVICORN, "config.asgi:application", "--host", "127.0.0.1", "--port", str(self.port)]
        super().__init__("uvicorn", [*cmd, "--no-access-log", "--lifespan", "off", *extra], env, log_dir)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"uvicorn exited:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health/live", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"uvicorn not ready:\n{self.tail()}")


class Worker(Proc):
    """`manage.py rundramatiq` with one worker process: main (dramatiq CLI) → worker child → decoder children."""

    def __init__(self, env: dict[str, str], log_dir: Path, threads: int = 1, wrap: tuple[str, ...] = ()) -> None:
        """`wrap` prefixes the command (e.g. strace); then child() is not the actor process."""
        cmd = [PYTHON, "manage.py", "rundramatiq", "--processes", "1", "--threads", str(threads), "--skip-checks"]
        cmd = [*wrap, *cmd]
        super().__init__("worker", cmd, {**env, "LOG_LEVEL": "INFO"}, log_dir)  # INFO: it logs when it is ready
        try:
            wait_until(lambda: "ready for action" in self.tail(200) or not self.running(), 60, "the worker to start")
        except AssertionError:
            self.stop()
            raise
        if not self.running():
            raise RuntimeError(f"worker exited:\n{self.tail()}")

    def child(self) -> int:
        """The worker process that runs actors (dramatiq's main only supervises it)."""
        [pid] = children(self.pid)
        return pid


def manage(name: str, env: dict[str, str], log_dir: Path, *args: str) -> Proc:
    return Proc(name, [PYTHON, "manage.py", *args], env, log_dir)
