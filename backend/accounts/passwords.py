"""argon2id password hashing, off the event loop (one hash costs tens of milliseconds)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

from backend.config import Settings
from backend.errors import BadRequest


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)


def hasher(settings: Settings) -> PasswordHasher:
    return _hasher(settings.argon2_time_cost, settings.argon2_memory_kib)


async def hash_password(settings: Settings, password: str) -> str:
    return await asyncio.to_thread(hasher(settings).hash, password)


async def verify_password(settings: Settings, password_hash: str, password: str) -> bool:
    def check() -> bool:
        try:
            return hasher(settings).verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


@lru_cache(maxsize=1)
def _dummy_hash(time_cost: int, memory_kib: int) -> str:
    return _hasher(time_cost, memory_kib).hash("no such account")


async def burn_password_check(settings: Settings, password: str) -> None:
    """Spend the time of one real check, so an unknown phone answers as slowly as a wrong
    password and timing tells nothing."""
    dummy = _dummy_hash(settings.argon2_time_cost, settings.argon2_memory_kib)
    await verify_password(settings, dummy, password)


MIN_LENGTH = 8
# zxcvbn's score: 3 means "safely unguessable" (about 10^8 guesses or more), out of reach of
# throttled online guessing and costly offline against argon2id.
MIN_SCORE = 3
# zxcvbn's cost grows with the length (a 128-character password takes 0.2 s); a prefix that is
# already strong makes the whole strong, so only the first characters are judged.
JUDGED_CHARACTERS = 32
TOO_SHORT = f"密码至少 {MIN_LENGTH} 位"
TOO_COMMON = (
    "密码太常见或太容易猜到（常用密码、键盘顺序、重复字符、日期、手机号等），"
    "请换一个更长、更不常见的密码，例如几个词加数字"
)


def check_password_rules(
    password: str, *, user_inputs: Sequence[str] = (), field: str = "new_password"
) -> None:
    """Refuse short passwords and ones that zxcvbn (a maintained estimator that knows the
    common-password lists, keyboard walks, repeats, dates and l33t) finds easy to guess.
    `user_inputs` (the phone number, the name) count as known to the guesser."""
    message = None
    if len(password) < MIN_LENGTH:
        message = TOO_SHORT
    else:
        judged = password[:JUDGED_CHARACTERS]
        inputs = [value for value in user_inputs if value]
        if zxcvbn(judged, user_inputs=inputs, max_length=JUDGED_CHARACTERS)["score"] < MIN_SCORE:
            message = TOO_COMMON
    if message is not None:
        raise BadRequest(message, code="weak_password", field_errors={field: message})
