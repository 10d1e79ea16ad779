"""`/health/ready`: a load balancer sends traffic only to a process whose database and Redis
answer; `/health` stays the liveness check that touches neither."""

from __future__ import annotations

import httpx
from litestar import Litestar
from redis.asyncio import Redis


async def test_ready_when_the_database_and_redis_answer(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_not_ready_while_redis_is_unreachable(
    app: Litestar, client: httpx.AsyncClient
) -> None:
    working = app.state.redis
    # Nothing listens on port 1: the connection is refused, as with a Redis that was killed.
    app.state.redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        response = await client.get("/health/ready")
        alive = await client.get("/health")
    finally:
        await app.state.redis.aclose()
        app.state.redis = working
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert response.headers["Retry-After"] == "15"
    assert alive.status_code == 200  # the process itself is alive: do not restart it
    assert (await client.get("/health/ready")).status_code == 200
