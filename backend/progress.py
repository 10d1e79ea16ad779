"""Progress of long jobs, kept in Redis: their writes run in one transaction, so a row in the
database could not show how far they are until they end."""

from __future__ import annotations

from redis.asyncio import Redis

TTL = 24 * 3600


def key(kind: str, job_id: int) -> str:
    return f"progress:{kind}:{job_id}"


async def report(redis: Redis, kind: str, job_id: int, **fields: str | int) -> None:
    # One MULTI: the hash is never left without its expiry.
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(key(kind, job_id), mapping=fields)
        pipe.expire(key(kind, job_id), TTL)
        await pipe.execute()


async def read(redis: Redis, kind: str, job_id: int) -> dict[str, str]:
    raw = await redis.hgetall(key(kind, job_id))  # type: ignore[misc]
    return {k.decode(): v.decode() for k, v in raw.items()}
