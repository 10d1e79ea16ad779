"""Login throttling in Redis: failures counted per account and per client address within a
window; past either limit, no password is even checked until the window ends."""

from __future__ import annotations

from redis.asyncio import Redis

from backend.config import Settings
from backend.errors import TooManyAttempts


def _keys(phone: str, client_addr: str | None) -> tuple[str, str]:
    return f"login-fail:acct:{phone}", f"login-fail:addr:{client_addr or '-'}"


async def check_login_allowed(
    redis: Redis, settings: Settings, phone: str, client_addr: str | None
) -> None:
    account_key, address_key = _keys(phone, client_addr)
    account_failures, address_failures = await redis.mget(account_key, address_key)
    over_account = int(account_failures or 0) >= settings.login_max_failures_per_account
    over_address = int(address_failures or 0) >= settings.login_max_failures_per_address
    if over_account or over_address:
        ttl = await redis.ttl(account_key if over_account else address_key)
        raise TooManyAttempts("登录失败次数过多，请稍后再试", retry_after=max(int(ttl), 1))


async def count_login_failure(
    redis: Redis, settings: Settings, phone: str, client_addr: str | None
) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for key in _keys(phone, client_addr):
            pipe.incr(key)
            pipe.expire(key, settings.login_window_seconds, nx=True)
        await pipe.execute()


async def clear_account_failures(redis: Redis, phone: str) -> None:
    await redis.delete(_keys(phone, None)[0])
