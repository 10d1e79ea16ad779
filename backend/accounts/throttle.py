"""Login throttling in Redis: slow attackers down without handing them a way to lock owners out.

- Per account + client address, a growing delay: after `login_free_failures` attempts each
  further one must wait 1 s, 2 s, 4 s … up to `login_delay_max_seconds`. An attacker
  hammering one account from one address is slowed to a crawl; the owner, from any other
  address, is not affected. A success forgets that pair.
- An address with more than `login_max_failures_per_address` failed logins (spraying: many
  accounts, few guesses each), or an account failed from `login_attack_addresses` different
  addresses (a distributed attack), is not refused: it needs a one-time SMS code sent to the
  account's phone, checked before the password. The sprayer has no codes; the teacher behind
  the same school address, or the owner of an attacked account, has the phone.

Every count is one atomic Redis step (a Lua script): the attempt is counted when it begins,
before the password is checked, so sixty guesses sent at once are counted as sixty, never
read as "under the limit" sixty times. A success gives its reservation back.

The SMS codes sent per phone and per address each hour are quotas of `backend/quota.py`, the
service's one limiter.

Keys carry a hash of the phone number, never the number.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass

from redis.asyncio import Redis

from backend.config import Settings
from backend.errors import TooManyAttempts
from backend.quota import Quota, take

# KEYS: pair count, pair wait, address count, the account's failing addresses
# ARGV: address, free failures, max delay ms, pair memory s, window s, address limit,
#       attack addresses
# Returns {0, wait ms} when the pair must still wait, else {1, needs an SMS code (0/1)}.
_BEGIN = """
local wait = redis.call('PTTL', KEYS[2])
if wait > 0 then return {0, wait} end
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
local free = tonumber(ARGV[2])
if n >= free then
  local delay = math.min(tonumber(ARGV[3]), 1000 * 2 ^ math.min(n - free, 40))
  redis.call('SET', KEYS[2], '1', 'PX', math.floor(delay))
end
local m = redis.call('INCR', KEYS[3])
if redis.call('TTL', KEYS[3]) < 0 then redis.call('EXPIRE', KEYS[3], ARGV[5]) end
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('EXPIRE', KEYS[4], ARGV[5])
local gated = 0
if m > tonumber(ARGV[6]) or redis.call('SCARD', KEYS[4]) >= tonumber(ARGV[7]) then
  gated = 1
end
return {1, gated}
"""

# A success: the pair starts afresh, the address gets its reservation back, and this address
# is no attacker of this account.
_SUCCEEDED = """
redis.call('DEL', KEYS[1], KEYS[2])
if redis.call('EXISTS', KEYS[3]) == 1 and redis.call('DECR', KEYS[3]) <= 0 then
  redis.call('DEL', KEYS[3])
end
redis.call('SREM', KEYS[4], ARGV[1])
return 1
"""

# KEYS: code; ARGV: code hash, code life s. 1: stored; 0: a code is still alive.
_STORE_CODE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'hash', ARGV[1], 'tries', 0)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: code; ARGV: hash offered, tries allowed. 1: right (and spent); 0: wrong; -1: none.
_USE_CODE = """
local stored = redis.call('HGET', KEYS[1], 'hash')
if not stored then return -1 end
if stored == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
if redis.call('HINCRBY', KEYS[1], 'tries', 1) >= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
end
return 0
"""

SMS_CODE_TRIES = 5
SMS_CODE_WINDOW = 3600  # the per-phone and per-address limits count codes per hour


@dataclass(frozen=True, slots=True)
class LoginKeys:
    pair_count: str
    pair_wait: str
    address: str
    account_addresses: str
    code: str
    sms_by_phone: str
    sms_by_address: str
    client_addr: str


def login_keys(phone: str, client_addr: str | None) -> LoginKeys:
    account = hashlib.sha256(f"login:{phone}".encode()).hexdigest()[:24]
    addr = (client_addr or "-")[:64]
    return LoginKeys(
        pair_count=f"login:pair:{account}:{addr}",
        pair_wait=f"login:pair-wait:{account}:{addr}",
        address=f"login:addr:{addr}",
        account_addresses=f"login:acct-addrs:{account}",
        code=f"login:sms-code:{account}",
        sms_by_phone=f"login:sms-sent:acct:{account}",
        sms_by_address=f"login:sms-sent:addr:{addr}",
        client_addr=addr,
    )


def _wait_message(seconds: int) -> str:
    return f"登录失败次数过多，请 {seconds} 秒后再试"


async def begin_attempt(redis: Redis, settings: Settings, keys: LoginKeys) -> bool:
    """Count this attempt before any password is checked. Raises `TooManyAttempts` (with the
    remaining wait) while this account+address must wait; returns whether an SMS code is
    needed on top of the password."""
    script = redis.register_script(_BEGIN)
    allowed, value = await script(
        keys=[keys.pair_count, keys.pair_wait, keys.address, keys.account_addresses],
        args=[
            keys.client_addr,
            settings.login_free_failures,
            settings.login_delay_max_seconds * 1000,
            settings.login_pair_memory_seconds,
            settings.login_window_seconds,
            settings.login_max_failures_per_address,
            settings.login_attack_addresses,
        ],
    )
    if not allowed:
        seconds = max(math.ceil(int(value) / 1000), 1)
        raise TooManyAttempts(_wait_message(seconds), retry_after=seconds)
    return bool(value)


async def login_succeeded(redis: Redis, keys: LoginKeys) -> None:
    script = redis.register_script(_SUCCEEDED)
    await script(
        keys=[keys.pair_count, keys.pair_wait, keys.address, keys.account_addresses],
        args=[keys.client_addr],
    )


def _code_hash(settings: Settings, phone: str, code: str) -> str:
    key = settings.jwt_keys[settings.jwt_active_kid].encode()
    return hmac.new(key, f"login-sms:{phone}:{code}".encode(), hashlib.sha256).hexdigest()


async def issue_sms_code(
    redis: Redis, settings: Settings, keys: LoginKeys, phone: str, code: str
) -> bool:
    """Store `code` as the account's login code unless one is still alive. True: send it.
    Raises `TooManyAttempts` when this phone or address has had its codes for the hour."""
    if await redis.exists(keys.code):
        return False
    refused = await take(
        redis,
        [
            Quota(keys.sms_by_phone, settings.login_sms_per_phone_per_hour, SMS_CODE_WINDOW),
            Quota(keys.sms_by_address, settings.login_sms_per_address_per_hour, SMS_CODE_WINDOW),
        ],
    )
    if refused is not None:
        raise TooManyAttempts("短信验证码发送过于频繁，请稍后再试", retry_after=refused.retry_after)
    # Two requests that both found no code have both been counted; only one stores and sends.
    script = redis.register_script(_STORE_CODE)
    stored = await script(
        keys=[keys.code], args=[_code_hash(settings, phone, code), settings.login_sms_code_seconds]
    )
    return int(stored) == 1


async def forget_sms_code(redis: Redis, keys: LoginKeys) -> None:
    """The SMS did not go out: let the next attempt issue another (the hourly count stays)."""
    await redis.delete(keys.code)


async def use_sms_code(
    redis: Redis, settings: Settings, keys: LoginKeys, phone: str, code: str
) -> bool:
    """True if `code` is the account's live login code (now spent). Each wrong code is one of
    `SMS_CODE_TRIES`; then the code is dead."""
    script = redis.register_script(_USE_CODE)
    outcome = await script(
        keys=[keys.code], args=[_code_hash(settings, phone, code), SMS_CODE_TRIES]
    )
    return int(outcome) == 1
