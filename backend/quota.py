"""Fixed-window quotas in Redis, taken all or nothing by one script: the one limiter of the
service (uploads, dry runs, sign-up tries and SMS, login SMS codes).

`take()` checks every counter and, only when none is spent, adds one to each: one atomic
Redis operation (a Lua script), so concurrent requests can never overshoot a limit (a
read-then-write could), a refused request uses up no counter, and no crash can leave a
counter without its expiry. A window starts with the first use and ends `seconds` later; a
limit of 0 or less means no limit.

`give_back()` returns a use that turned out not to count (a right registration code is no
failed try), also in one script, and never re-creates a counter whose window has ended.

The login delay (`accounts/throttle.py`) is not a quota: it never refuses by count, it grows
a wait per account and address, in its own script.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

# KEYS: the counters; ARGV: limit and window seconds of each, in turn.
# Returns {0, 0} when taken, else {index of the first spent counter (1-based), seconds until
# every spent counter has room again}.
_TAKE = """
local spent, wait = 0, 0
for i, key in ipairs(KEYS) do
  local used = tonumber(redis.call('GET', key) or '0')
  if used >= tonumber(ARGV[2 * i - 1]) then
    local ttl = redis.call('TTL', key)
    if ttl < 0 then
      ttl = tonumber(ARGV[2 * i])
      redis.call('EXPIRE', key, ttl)
    end
    if spent == 0 then spent = i end
    if ttl > wait then wait = ttl end
  end
end
if spent > 0 then return {spent, wait} end
for i, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[2 * i]) end
end
return {0, 0}
"""


# KEYS: the counters. A counter that has expired stays gone; one back at zero is deleted.
_GIVE_BACK = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 and redis.call('DECR', key) <= 0 then
    redis.call('DEL', key)
  end
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Quota:
    key: str
    limit: int
    seconds: int


@dataclass(frozen=True, slots=True)
class Refused:
    quota: Quota  # the first spent one
    retry_after: int  # seconds until every spent quota has room again


async def take(redis: Redis, quotas: Sequence[Quota]) -> Refused | None:
    """One use of every quota, or none if any is spent (then: which, and for how long)."""
    active = [q for q in quotas if q.limit > 0]
    if not active:
        return None
    args: list[str] = []
    for quota in active:
        args += [str(quota.limit), str(quota.seconds)]
    spent, wait = await redis.eval(  # type: ignore[misc]
        _TAKE, len(active), *(q.key for q in active), *args
    )
    if int(spent) == 0:
        return None
    return Refused(active[int(spent) - 1], max(int(wait), 1))


async def give_back(redis: Redis, quotas: Sequence[Quota]) -> None:
    """Undo one use of each quota (taken by `take()`), within its window only."""
    active = [q for q in quotas if q.limit > 0]
    if active:
        await redis.eval(_GIVE_BACK, len(active), *(q.key for q in active))  # type: ignore[misc]
