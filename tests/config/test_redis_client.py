"""config.redis clients: no socket timeout on sends (no task per command), yet a silent Redis times out reads."""

import asyncio

import pytest
import redis.exceptions

from config import redis as fw_redis


async def test_a_redis_that_never_answers_times_out_the_read():
    """A server that accepts and then says nothing: the command fails with a Redis error after TIMEOUT_S,
    it does not hang (the outer guard would raise asyncio's TimeoutError instead)."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)  # read until the client goes away, never answer

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = fw_redis.async_redis(f"redis://127.0.0.1:{port}/0")
    try:
        assert client.connection_pool.connection_kwargs.get("socket_timeout") is None
        with pytest.raises(redis.exceptions.RedisError):  # TimeoutError, or ConnectionError from the health PING
            await asyncio.wait_for(client.get("anything"), timeout=fw_redis.TIMEOUT_S * 10)
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
