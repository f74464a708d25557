"""Concurrent rotation of one refresh token against PostgreSQL: exactly one caller wins."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from tests.conftest import tokens_for
from tests.factories import UserFactory

THREADS = 20


@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_of_one_token_let_exactly_one_through():
    if connection.vendor != "postgresql":
        pytest.skip("row-level concurrency needs PostgreSQL")
    user = UserFactory()
    raw = tokens_for(user)["refresh"]
    outstanding_before = OutstandingToken.objects.count()
    barrier = threading.Barrier(THREADS)

    def refresh() -> tuple[int, dict]:
        client = APIClient()
        try:
            barrier.wait(timeout=10)
            response = client.post("/api/v1/auth/token/refresh", {"refresh": raw}, format="json")
            return response.status_code, response.json()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(lambda _: refresh(), range(THREADS)))

    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [401] * (THREADS - 1)
    assert all(body["error"] == "not_authenticated" for status, body in results if status == 401)
    # Exactly one successor token was minted.
    assert OutstandingToken.objects.count() == outstanding_before + 1
