"""Resend jobs whose worker died or whose message was lost; once, or every N seconds with --every."""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from videos.processing import LEASE_S, requeue_stale_jobs


class Command(BaseCommand):
    help = "Requeue processing jobs with a stale heartbeat (worker died) or stuck pending (message lost)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=int, default=LEASE_S, help="seconds without a heartbeat")
        parser.add_argument("--every", type=int, default=0, help="repeat every N seconds (0: run once)")

    def handle(self, *args: Any, older_than: int, every: int, **options: Any) -> None:
        while True:
            try:
                self.stdout.write(f"requeued {requeue_stale_jobs(older_than_s=older_than)} job(s)")
            except Exception as exc:
                if every <= 0:
                    raise
                # A broker or database outage: the service keeps running and the next pass retries.
                self.stderr.write(f"requeue pass failed: {exc!r}")
            finally:
                close_old_connections()
            if every <= 0:
                return
            time.sleep(every)
