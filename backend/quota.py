"""Fixed-window quotas in Redis, taken all or nothing by one script.

`take()` checks every counter and, only when none is spent, adds one to each: one atomic
Redis operation (a Lua script), so concurrent requests can never overshoot a limit (a
read-then-write could), and a refused request uses up no counter. A window starts with the
first use and ends `seconds` later; a limit of 0 or less means no limit.
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
