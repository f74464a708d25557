"""Shared benchmark plumbing: process memory sampling, server subprocesses, the benchmark database."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"


def proc_status(pid: int) -> dict[str, int]:
    """The Vm*/Rss* lines of /proc/<pid>/status, in kB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("Vm", "Rss")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    return out


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (uvicorn --workers 1 and daphne are one process, but be sure)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").iterdir():
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return pids


class RssSampler:
    """Sum of VmRSS over a process tree every `interval` s in a thread; exact peak from VmHWM."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pids = process_tree(pid)
        self.interval = interval
        self.samples: list[tuple[float, int, int]] = []  # (t, rss, anon) in kB
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def read(self) -> tuple[int, int]:
        """(VmRSS, RssAnon) summed over the tree, kB; anonymous memory is the heap, not mapped files."""
        rss = anon = 0
        for pid in self.pids:
            status = proc_status(pid)
            rss += status["VmRSS"]
            anon += status.get("RssAnon", 0)
        return rss, anon

    def __enter__(self) -> RssSampler:
        for pid in self.pids:  # "5" resets the peak RSS (VmHWM) to the current RSS
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        self.baseline, self.baseline_anon = self.read()
        self.t0 = time.perf_counter()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - self.t0, *self.read()))
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.perf_counter() - self.t0, *self.read()))
        self.hwm = sum(proc_status(pid)["VmHWM"] for pid in self.pids)

    def summary(self) -> dict[str, Any]:
        peak = max(self.samples, key=lambda s: s[1])
        step = max(1, len(self.samples) // 40)
        return {
            "baseline_mb": mb(self.baseline),
            "peak_growth_mb": mb(max(self.hwm, peak[1]) - self.baseline),  # VmHWM: exact, between samples too
            "sampled_peak_growth_mb": mb(peak[1] - self.baseline),
            "sampled_peak_anon_growth_mb": mb(peak[2] - self.baseline_anon),
            "sampled_peak_at_s": round(peak[0], 3),
            "after_mb": mb(self.samples[-1][1]),
            "samples": len(self.samples),
            "timeline_mb": [[round(t, 2), mb(rss - self.baseline)] for t, rss, _ in self.samples[::step]],
        }


def mb(kb: int) -> float:
    return round(kb / 1024, 1)


class ServerProcess:
    """A server subprocess on 127.0.0.1:<port>, its output in `log_path`."""

    def __init__(self, cmd: list[str], port: int, env: dict[str, str], log_path: Path, name: str) -> None:
        self.port, self.name, self.log_path = port, name, log_path
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            raise RuntimeError(f"port {port} is already in use; pass another --port")
        self.log = log_path.open("wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, path: str | None = "/health/live", timeout: float = 60.0) -> None:
        """Until `path` answers 200 (or, with None, the port accepts connections)."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            with contextlib.suppress(OSError, httpx.HTTPError):
                if path is None:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                    return
                if httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout} s:\n{self.tail()}")

    def tail(self) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def bench_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a benchmark's server and in-process Django: its own database and Redis db, no rate
    limits, no embedded worker, production-like settings."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "RATE_LIMIT_ENABLED": "0",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "EMBEDDED_WORKER": "0",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def prepare_database(name: str, env: dict[str, str]) -> None:
    """Create the benchmark database `name` if missing and migrate it with `env`."""
    psql = ["psql", "-h", "127.0.0.1", "-U", "root", "-d", "postgres", "-tAc"]
    exists = subprocess.run(
        [*psql, f"select 1 from pg_database where datname = '{name}'"],  # noqa: S608 - a benchmark constant
        capture_output=True,
        text=True,
        check=True,
    )
    if exists.stdout.strip() != "1":
        # `name` is a constant of the calling benchmark, never user input.
        subprocess.run([*psql, f"create database {name}"], capture_output=True, check=True)
    migrate = subprocess.run(
        [str(BIN / "python"), "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True
    )
    if migrate.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{migrate.stdout.decode()[-2000:]}\n{migrate.stderr.decode()[-2000:]}")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time consumed so far by `pids` (processes that are gone count 0)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def database_backends(name: str) -> list[int]:
    """PostgreSQL backend pids connected to database `name` (the server runs on this host)."""
    out = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "root",
            "-d",
            "postgres",
            "-tAc",
            f"select pid from pg_stat_activity where datname = '{name}'",  # noqa: S608 - a benchmark constant
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [int(p) for p in out.stdout.split()]


class CpuMeter:
    """CPU seconds spent by processes and by the database's backends during a block: unlike wall time, this
    hardly moves when other work shares the machine's cores."""

    def __init__(self, pids: list[int], database: str) -> None:
        self.pids, self.database = pids, database

    def __enter__(self) -> CpuMeter:
        self.backends = database_backends(self.database)
        self.start = (cpu_seconds(self.pids), cpu_seconds(self.backends))
        return self

    def __exit__(self, *exc: object) -> None:
        self.process_s = cpu_seconds(self.pids) - self.start[0]
        self.postgres_s = cpu_seconds(self.backends) - self.start[1]
