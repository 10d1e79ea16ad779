"""The one limiter (`backend/quota.py`): concurrent uses never overshoot a limit, a use given
back never re-creates a counter, and no counter is ever left without its expiry. The limits
built on it are tested with their features (uploads, dry runs, sign-up tries and SMS); the
login SMS limits, which are only reached behind an attack, are driven here directly."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from backend import quota
from backend.accounts import throttle
from backend.config import Settings
from backend.errors import TooManyAttempts
from backend.parents import links
from backend.quota import Quota


async def _keys_without_expiry(redis: Redis) -> list[str]:
    return [key.decode() async for key in redis.scan_iter() if await redis.ttl(key) == -1]


async def test_concurrent_takes_never_overshoot_and_a_refusal_counts_nothing(
    redis: Redis,
) -> None:
    hour, day = Quota("q:test:hour", 7, 3600), Quota("q:test:day", 100, 86_400)

    answers = await asyncio.gather(*(quota.take(redis, [hour, day]) for _ in range(40)))

    refused = [a for a in answers if a is not None]
    assert len(answers) - len(refused) == 7
    assert {a.quota for a in refused} == {hour}
    assert all(0 < a.retry_after <= 3600 for a in refused)
    assert int(await redis.get(hour.key) or 0) == 7
    assert int(await redis.get(day.key) or 0) == 7  # the refused 33 took nothing from the day
    assert await _keys_without_expiry(redis) == []


async def test_a_use_given_back_after_its_window_ended_leaves_no_counter(redis: Redis) -> None:
    """A right registration code gives its try back; if the hour ended meanwhile, a plain
    DECR made a counter of -1 that never expired (a free try for good, and a key for ever)."""
    tries = links._tries({"addr": "192.0.2.1", "phone": "x", "code": "y"})
    assert await quota.take(redis, tries) is None
    await redis.delete(*(q.key for q in tries))  # the window ends while the code is checked

    await quota.give_back(redis, tries)

    assert await redis.keys("signup-fail:*") == []


async def test_a_use_given_back_within_the_window_is_returned(redis: Redis) -> None:
    only = Quota("q:test:once", 1, 3600)
    assert await quota.take(redis, [only]) is None
    assert await quota.take(redis, [only]) is not None

    await quota.give_back(redis, [only])

    assert await redis.exists(only.key) == 0
    assert await quota.take(redis, [only]) is None
    assert await redis.ttl(only.key) > 0


async def test_login_sms_codes_per_address_hold_under_concurrent_requests(
    redis: Redis, settings: Settings
) -> None:
    """A sprayer asking codes for many accounts at once from one address gets the hour's
    allowance and not one more; the counters keep their expiry."""
    limit = settings.login_sms_per_address_per_hour
    phones = [f"1390000{n:04d}" for n in range(limit + 15)]

    async def issue(phone: str) -> bool | tuple[str, int | None]:
        keys = throttle.login_keys(phone, "203.0.113.9")
        try:
            return await throttle.issue_sms_code(redis, settings, keys, phone, "123456")
        except TooManyAttempts as refused:
            return refused.code, refused.retry_after

    answers = await asyncio.gather(*(issue(phone) for phone in phones))

    assert answers.count(True) == limit
    refusals = [a for a in answers if isinstance(a, tuple)]
    assert len(refusals) == 15
    assert all(code == "too_many_attempts" and 0 < (wait or 0) <= 3600 for code, wait in refusals)
    assert await _keys_without_expiry(redis) == []


async def test_login_sms_codes_per_phone_hold_under_concurrent_requests(
    redis: Redis, settings: Settings
) -> None:
    """Each request finds the last code spent (deleted) and asks for another: the phone's
    hourly allowance still holds."""
    phone, limit = "13900001111", settings.login_sms_per_phone_per_hour

    async def issue(n: int) -> bool | str:
        keys = throttle.login_keys(phone, f"198.51.100.{n}")
        await redis.delete(keys.code)
        try:
            return await throttle.issue_sms_code(redis, settings, keys, phone, f"{n:06d}")
        except TooManyAttempts as refused:
            return refused.code

    answers = await asyncio.gather(*(issue(n) for n in range(limit + 10)))

    assert answers.count("too_many_attempts") >= 10
    assert answers.count(True) <= limit
    assert int(await redis.get(throttle.login_keys(phone, None).sms_by_phone) or 0) == limit
    assert await _keys_without_expiry(redis) == []


@pytest.mark.parametrize("limit", [0, -1])
async def test_a_limit_of_zero_or_less_is_no_limit_and_stores_nothing(
    redis: Redis, limit: int
) -> None:
    unlimited = Quota("q:test:off", limit, 60)
    assert all([await quota.take(redis, [unlimited]) is None for _ in range(5)])
    await quota.give_back(redis, [unlimited])
    assert await redis.exists(unlimited.key) == 0
