"""Production HTTP server: N uvicorn processes, each accepting on its own SO_REUSEPORT socket.

`uvicorn --workers N` binds one socket in the parent and every worker accepts on it; Linux wakes the waiters
of a shared socket unevenly, and measured here 62 of 64 wrk connections landed on one of two workers, so the
second core served almost nothing. With one SO_REUSEPORT socket per process the kernel hashes each new
connection to a socket, so connections spread evenly across the processes. The parent only supervises:
a worker that dies is started again, SIGTERM/SIGINT stop them all.

    python -m config.serve --host 0.0.0.0 --port 8000 --workers 2
"""

import argparse
import logging
import multiprocessing
import signal
import socket
import sys
import time
from typing import Any

logger = logging.getLogger("framewise.serve")

APP = "config.asgi:application"
# A worker that dies this soon after its start (a port taken by a non-reuseport socket, a broken setting) would
# only die again: the server stops instead of restarting it in a loop.
EARLY_EXIT_S = 5.0


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(host: str, port: int, options: dict[str, Any]) -> None:
    import uvicorn

    sock = listening_socket(host, port)
    uvicorn.Server(uvicorn.Config(APP, host=host, port=port, **options)).run(sockets=[sock])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--no-access-log", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    options = {"log_level": args.log_level, "access_log": not args.no_access_log}
    context = multiprocessing.get_context("spawn")

    def start() -> tuple[Any, float]:
        process = context.Process(target=_worker, args=(args.host, args.port, options), daemon=False)
        process.start()
        return process, time.monotonic()

    workers = [start() for _ in range(args.workers)]
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    while not stopping:
        for i, (process, started) in enumerate(workers):
            if process.is_alive():
                continue
            if time.monotonic() - started < EARLY_EXIT_S:
                logger.error("worker %s exited %s right after starting; stopping", process.pid, process.exitcode)
                stopping, status = True, 1
                break
            logger.warning("worker %s exited %s; starting another", process.pid, process.exitcode)
            workers[i] = start()
        time.sleep(0.2)
    for process, _ in workers:
        if process.is_alive():
            process.terminate()  # uvicorn finishes in-flight requests on SIGTERM
    for process, _ in workers:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
    return status


if __name__ == "__main__":
    sys.exit(main())
