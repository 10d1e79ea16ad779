"""argon2id password hashing, off the event loop (one hash costs tens of milliseconds)."""

from __future__ import annotations

import asyncio
import re
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

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


def check_password_rules(password: str) -> None:
    if len(password) < 8 or not re.search(r"[A-Za-z]", password) or not re.search(r"\d", password):
        raise BadRequest(
            "密码至少 8 位，且须同时包含字母和数字",
            code="weak_password",
            field_errors={"new_password": "密码至少 8 位，且须同时包含字母和数字"},
        )
