"""Settings: read from the environment once, by `get_settings()`, and passed in from there.

Nothing reads the environment at import time. Every setting has a default that makes the
embedded start (`python app.py`) work with no configuration at all.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    var_dir: Path = ROOT / "var"
    database_url: str | None = None  # None: SQLite file under var_dir
    redis_url: str | None = None  # None: 127.0.0.1:6379 if it answers, else a private server
    redis_probe_url: str = "redis://127.0.0.1:6379/0"
    host: str = "127.0.0.1"
    port: int = 8000
    run_worker_inline: bool = True
    seed_demo: bool = True
    # JWT: every key that may still verify, by kid; new tokens are signed with the active one.
    jwt_keys: Mapping[str, str] = field(default_factory=dict)
    jwt_active_kid: str = ""
    jwt_issuer: str = "registry-mobile"
    jwt_audience: str = "registry-mobile-app"
    access_token_seconds: int = 900
    refresh_token_seconds: int = 30 * 24 * 3600
    staff_password_max_age_days: int = 90
    seal_after_inactive_days: int = 180
    login_window_seconds: int = 900
    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 30
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19 * 1024  # OWASP's argon2id minimum
    trust_forwarded_for: bool = False
    db_pool_size: int = 16
    storage: str = "local"  # or "s3"
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_bucket: str = "registry-uploads"
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    form_token_key: str = ""  # signs the QR token on printed forms
    sms_url: str | None = None  # an HTTP SMS gateway; None: the code is logged
    sms_token: str | None = None
    check_lease_seconds: int = 120  # a photo check not finished by then is taken over
    # Hostile input and exposure (backend/http.py, app.py). The OpenAPI docs at /schema are on
    # for the embedded start and off in production (404). A non-multipart body (every JSON
    # request) larger than max_json_bytes is refused with 413, one nested deeper than
    # max_json_depth with 400: no request of this API comes near either.
    openapi_enabled: bool = True
    max_json_bytes: int = 1024 * 1024
    max_json_depth: int = 32

    @property
    def is_postgres(self) -> bool:
        return bool(self.database_url and self.database_url.startswith("postgres"))

    @property
    def sqlite_path(self) -> Path:
        return self.var_dir / "registry.sqlite3"

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _parse_keys(value: str) -> dict[str, str]:
    """`kid1:secret1,kid2:secret2`."""
    keys: dict[str, str] = {}
    for item in value.split(","):
        kid, _, secret = item.strip().partition(":")
        if kid and secret:
            keys[kid] = secret
    return keys


def _dev_key(var_dir: Path, name: str = "jwt-dev.key") -> str:
    """A random signing key kept under var/, so the embedded default needs no setup and
    tokens survive a restart."""
    path = var_dir / name
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def settings_from_env(env: Mapping[str, str]) -> Settings:
    base = Settings()
    var_dir = Path(env.get("VAR_DIR", str(base.var_dir)))
    keys = _parse_keys(env.get("JWT_KEYS", ""))
    if not keys:
        keys = {"dev1": _dev_key(var_dir)}
    if any(len(secret) < 32 for secret in keys.values()):
        raise ValueError("every JWT key must be at least 32 characters long")
    active = env.get("JWT_ACTIVE_KID") or next(iter(keys))
    if active not in keys:
        raise ValueError(f"JWT_ACTIVE_KID {active!r} is not among JWT_KEYS")
    ints = {
        name: int(env[name.upper()])
        for name in (
            "port",
            "access_token_seconds",
            "refresh_token_seconds",
            "staff_password_max_age_days",
            "seal_after_inactive_days",
            "login_window_seconds",
            "login_max_failures_per_account",
            "login_max_failures_per_address",
            "argon2_time_cost",
            "argon2_memory_kib",
            "db_pool_size",
            "check_lease_seconds",
            "max_json_bytes",
            "max_json_depth",
        )
        if name.upper() in env
    }
    if ints.get("access_token_seconds", 0) > 900:
        raise ValueError("ACCESS_TOKEN_SECONDS may not exceed 900 (15 minutes)")
    return Settings(
        var_dir=var_dir,
        database_url=env.get("DATABASE_URL") or None,
        redis_url=env.get("REDIS_URL") or None,
        redis_probe_url=env.get("REDIS_PROBE_URL", base.redis_probe_url),
        host=env.get("HOST", base.host),
        run_worker_inline=_bool(env.get("RUN_WORKER_INLINE", "true")),
        seed_demo=_bool(env.get("SEED_DEMO", "true")),
        jwt_keys=keys,
        jwt_active_kid=active,
        jwt_issuer=env.get("JWT_ISSUER", base.jwt_issuer),
        jwt_audience=env.get("JWT_AUDIENCE", base.jwt_audience),
        trust_forwarded_for=_bool(env.get("TRUST_FORWARDED_FOR", "false")),
        storage=env.get("STORAGE", base.storage),
        s3_endpoint_url=env.get("S3_ENDPOINT_URL") or None,
        s3_region=env.get("S3_REGION", base.s3_region),
        s3_bucket=env.get("S3_BUCKET", base.s3_bucket),
        s3_access_key=env.get("S3_ACCESS_KEY") or None,
        s3_secret_key=env.get("S3_SECRET_KEY") or None,
        form_token_key=env.get("FORM_TOKEN_KEY") or _dev_key(var_dir, "form-token-dev.key"),
        sms_url=env.get("SMS_URL") or None,
        sms_token=env.get("SMS_TOKEN") or None,
        openapi_enabled=_bool(env.get("OPENAPI_ENABLED", "true")),
        **ints,
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return settings_from_env(os.environ)
