"""config.serve: uvicorn workers with a SO_REUSEPORT socket each share connections, restart, and stop on SIGTERM."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.reliability.procs import alive, children, free_port

ROOT = Path(__file__).resolve().parents[2]


def _wait_until(check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def _serves(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _sockets(pid: int) -> int:
    """Open sockets of a process; 0 once it is gone. Descriptors may close while they are read."""
    count = 0
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    for fd in fds:
        try:
            count += os.readlink(fd).startswith("socket:")
        except (FileNotFoundError, ProcessLookupError):
            continue
    return count


@pytest.fixture
def server():
    port = free_port()
    env = {**os.environ, "EMBEDDED_WORKER": "0", "LOG_LEVEL": "WARNING"}
    cmd = [sys.executable, "-m", "config.serve", "--port", str(port), "--workers", "2", "--log-level", "warning"]
    process = subprocess.Popen(cmd, cwd=ROOT, env=env)
    try:
        _wait_until(lambda: len(children(process.pid)) >= 2 and _serves(port), timeout=60)
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _workers(process: subprocess.Popen) -> list[int]:
    # multiprocessing's spawn context may add a resource tracker: the workers are the children listening.
    return [pid for pid in children(process.pid) if _sockets(pid) > 0]


def test_connections_spread_over_the_workers(server):
    process, port = server
    workers = _workers(process)
    assert len(workers) == 2
    before = {pid: _sockets(pid) for pid in workers}
    clients = []
    for _ in range(32):  # each connection is accepted by one worker's socket, chosen by the kernel's hash
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert client.recv(100).startswith(b"HTTP/1.1 200")
        clients.append(client)
    gained = {pid: _sockets(pid) - before[pid] for pid in workers}
    for client in clients:
        client.close()
    # A shared socket gave one worker 62 of 64 connections; a fair hash leaves fewer than 4 of 32 to one
    # worker about once in a million runs.
    assert min(gained.values()) >= 4, gained


def test_a_dead_worker_is_replaced_and_sigterm_stops_everything(server):
    process, port = server
    first, _ = _workers(process)
    time.sleep(5)  # past EARLY_EXIT_S: a worker dying now is restarted, not taken as a startup failure
    os.kill(first, signal.SIGKILL)
    _wait_until(lambda: first not in _workers(process) and len(_workers(process)) == 2)
    assert _serves(port)
    workers = _workers(process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=40) == 0
    assert not any(alive(pid) for pid in workers)
