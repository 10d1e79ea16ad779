"""Settings: read from the environment once, by `get_settings()`, and passed in from there.

Nothing reads the environment at import time. Every setting has a default that makes the
embedded start (`python app.py`) work with no configuration at all.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The form's QR code is a fixed version-4 symbol with medium error correction: the link's
# token (32 characters) in alphanumeric mode leaves room for 38 bytes of address + "/m/f/".
MAX_PUBLIC_BASE_URL = 33
_BASE_URL = re.compile(r"https?://[^/?#\s]+(/[^?#\s]*)?")


@dataclass(frozen=True)
class PushSettings:
    """The push gateways (docs/operations.md, "Push channels"). A channel without its
    credentials is off: its devices get a `failed` attempt "channel not configured" and the
    push is logged (title and ids only). Every base URL can point elsewhere (tests, a proxy)."""

    timeout_seconds: float = 10.0  # one request to a gateway; longer counts as a timeout
    ca_file: str | None = None  # extra CA certificates to trust (a gateway behind a private CA)
    fcm_service_account_file: str | None = None  # the Firebase service account's JSON key
    fcm_base_url: str = "https://fcm.googleapis.com"
    fcm_token_url: str | None = None  # None: the key's own token_uri
    apns_key_file: str | None = None  # the .p8 signing key (ES256)
    apns_key_id: str = ""
    apns_team_id: str = ""
    apns_topic: str = ""  # the app's bundle id
    apns_base_url: str = "https://api.push.apple.com"
    vapid_private_key_file: str | None = None  # PEM, the key whose public half the app uses
    vapid_subject: str = ""  # "mailto:ops@example.edu.cn": who the push service may contact
    jpush_app_key: str = ""
    jpush_master_secret: str = ""
    jpush_base_url: str = "https://api.jpush.cn"
    # Webhooks and Web Push endpoints may point at private or loopback addresses (a school
    # system on a private network, the tests' local gateways); off, only public hosts (SSRF).
    push_private_hosts: bool = False

    @property
    def fcm_on(self) -> bool:
        return bool(self.fcm_service_account_file)

    @property
    def apns_on(self) -> bool:
        return bool(
            self.apns_key_file and self.apns_key_id and self.apns_team_id and self.apns_topic
        )

    @property
    def webpush_on(self) -> bool:
        return bool(self.vapid_private_key_file and self.vapid_subject)

    @property
    def jpush_on(self) -> bool:
        return bool(self.jpush_app_key and self.jpush_master_secret)


def _push_settings(env: Mapping[str, str]) -> PushSettings:
    base = PushSettings()

    def url(name: str, default: str) -> str:
        return (env.get(name) or default).rstrip("/")

    return PushSettings(
        timeout_seconds=float(env.get("PUSH_TIMEOUT_SECONDS", base.timeout_seconds)),
        ca_file=env.get("PUSH_CA_FILE") or None,
        fcm_service_account_file=env.get("FCM_SERVICE_ACCOUNT_FILE") or None,
        fcm_base_url=url("FCM_BASE_URL", base.fcm_base_url),
        fcm_token_url=env.get("FCM_TOKEN_URL") or None,
        apns_key_file=env.get("APNS_KEY_FILE") or None,
        apns_key_id=env.get("APNS_KEY_ID", ""),
        apns_team_id=env.get("APNS_TEAM_ID", ""),
        apns_topic=env.get("APNS_TOPIC", ""),
        apns_base_url=url("APNS_BASE_URL", base.apns_base_url),
        vapid_private_key_file=env.get("VAPID_PRIVATE_KEY_FILE") or None,
        vapid_subject=env.get("VAPID_SUBJECT", ""),
        jpush_app_key=env.get("JPUSH_APP_KEY", ""),
        jpush_master_secret=env.get("JPUSH_MASTER_SECRET", ""),
        jpush_base_url=url("JPUSH_BASE_URL", base.jpush_base_url),
        push_private_hosts=_bool(env.get("PUSH_PRIVATE_HOSTS", "false")),
    )


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
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19 * 1024  # OWASP's argon2id minimum
    db_pool_size: int = 16
    storage: str = "local"  # or "s3"
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_bucket: str = "registry-uploads"
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    # Objects at rest (backend/storage_crypto.py, docs/security.md "Stored objects"): the local
    # store seals each object with AES-256-GCM under the active key of `storage_keys` (kid →
    # secret; the others only open older objects); S3 is asked for server-side encryption
    # ("AES256": SSE-S3, "aws:kms": SSE-KMS with `s3_sse_kms_key_id`; "" only for a store
    # that refuses the header).
    storage_keys: Mapping[str, str] = field(default_factory=dict)
    storage_active_kid: str = ""
    s3_server_side_encryption: str = "AES256"
    s3_sse_kms_key_id: str | None = None
    form_token_key: str = ""  # signs the QR token on printed forms
    # Where phones reach this service: the QR code on each form carries the link
    # `{public_base_url}/m/f/{token}`. At most MAX_PUBLIC_BASE_URL characters (the link must
    # fit the form's fixed QR symbol); no trailing slash.
    public_base_url: str = "http://127.0.0.1:8000"
    sms_url: str | None = None  # an HTTP SMS gateway; None: the code is logged
    sms_token: str | None = None
    push: PushSettings = field(default_factory=PushSettings)
    # An open live stream checks its session this often and closes once it has ended.
    stream_session_check_seconds: int = 30
    check_lease_seconds: int = 120  # a photo check not finished by then is taken over
    # A class's PDF not rendered by then is taken over: longer than a render job may run.
    render_lease_seconds: int = 20 * 60
    # Photo uploads (a re-sent photo, recognised by its hash, is not counted); 0: no limit.
    uploads_per_student_per_hour: int = 10
    uploads_per_student_per_day: int = 30
    uploads_per_account_per_day: int = 300
    # Dry-run imports per account and hour (each is audited); 0: no limit.
    import_dry_runs_per_hour: int = 10
    # Transfer starts (each holds a record of another school), found or not; 0: no limit.
    transfer_start_tries_per_hour: int = 30
    transfer_starts_per_school_per_day: int = 300
    # --- Login defences (client address, throttling, refresh grace) ---
    # Proxies in front of the API that each append the address they saw to X-Forwarded-For;
    # the client address is the element that many places from the right. 0: ignore the header.
    trusted_proxy_hops: int = 0
    # Two refreshes with the same token within this many seconds get the same new pair (a
    # phone waking up with two requests in flight); later, the old token is reuse.
    refresh_grace_seconds: int = 20
    # Login throttling (README, "Login throttling"). Per account+address: after
    # `login_free_failures` attempts each further one waits, 1 s doubling up to the maximum,
    # remembered for `login_pair_memory_seconds`; a success forgets it. An address with more
    # than `login_max_failures_per_address` failures, or an account failed from
    # `login_attack_addresses` addresses, within `login_window_seconds`, needs a one-time SMS
    # code as well as the password.
    login_free_failures: int = 3
    login_delay_max_seconds: int = 900
    login_pair_memory_seconds: int = 24 * 3600
    login_window_seconds: int = 900
    login_max_failures_per_address: int = 10
    login_attack_addresses: int = 3
    login_sms_code_seconds: int = 300
    login_sms_per_phone_per_hour: int = 5
    login_sms_per_address_per_hour: int = 30
    # The audit log (backend/accounts/audit.py). Each row is chained by HMAC-SHA256 under a
    # key kept outside the database, named per row by its key id so keys can rotate: new rows
    # use the active key, `audit verify` checks old rows with the key they name. Every chain's
    # head is anchored (a signed digest in the object storage and the log) by the worker
    # every 10 minutes and by `python -m backend audit anchor`.
    audit_keys: Mapping[str, str] = field(default_factory=dict)
    audit_active_kid: str = ""
    # Sensitive values inside audit rows are sealed (backend/accounts/audit_seal.py): an
    # HMAC and an AES-256-GCM ciphertext under the active key of `audit_seal_keys`, the others
    # still open and look up older rows. Kept apart from `audit_keys`: whoever verifies the
    # chain need not be able to read ID numbers.
    audit_seal_keys: Mapping[str, str] = field(default_factory=dict)
    audit_seal_active_kid: str = ""
    # Hostile input and exposure (backend/http.py, app.py). The OpenAPI docs at /schema are on
    # for the embedded start and off in production (404). A non-multipart body (every JSON
    # request) larger than max_json_bytes is refused with 413, one nested deeper than
    # max_json_depth with 400: no request of this API comes near either.
    openapi_enabled: bool = True
    max_json_bytes: int = 1024 * 1024
    max_json_depth: int = 32
    # The daily reminders (backend/notify/schedule.py) run once per working day at or after
    # this hour, China time ("HH:MM").
    digest_at: str = "08:30"
    # The archive (backend/parents/archive.py, docs/operations.md "The archive"): photos and
    # evidence of a settled campaign move under `archive_prefix`, on S3 into
    # `archive_storage_class` (a class read without a restore), `archive_after_days` after the
    # campaign's end, `archive_chunk` objects per job.
    archive_prefix: str = "archive/"
    archive_storage_class: str = "STANDARD_IA"
    archive_after_days: int = 30
    archive_chunk: int = 200
    # --- Second factor for staff (backend/accounts/second_factor.py, docs/security.md) ---
    # Registrars and every role above them confirm sign-in with an authenticator app's code
    # (TOTP) or an SMS code. Unset, it is on, except for the embedded demo (SEED_DEMO on), whose
    # printed demo logins must work as they are.
    second_factor_required: bool = True
    # Seals the TOTP secrets in the database and keys the recovery codes' hashes; kept outside
    # the database like the JWT and audit keys (unset: a random key under VAR_DIR).
    second_factor_key: str = ""
    second_factor_ticket_seconds: int = 300  # from the password to the code (or enrolment)
    # Wrong codes per account within the window (any ticket, any method), then 429.
    second_factor_max_failures: int = 10
    second_factor_failure_window_seconds: int = 900
    # The read-rate alert (backend/records/read_rate.py): a staff account may read this many
    # distinct students' records per clock hour; past it, it is throttled until the hour ends
    # and its admins are told. 0: no limit.
    student_reads_per_hour: int = 1000
    # A refusal (an out-of-scope 404, a 403) is audited through `pending_refusal`, drained by
    # the worker every few seconds (backend/accounts/refusal_queue.py); false: inline.
    refusal_audit_deferred: bool = True

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


def _rotating_keys(
    env: Mapping[str, str], name: str, var_dir: Path, dev_file: str
) -> tuple[dict[str, str], str]:
    """`NAME=kid:secret[,kid:secret…]`, the first one active (the others only read or verify
    older data); unset: one random key kept in var/ for the embedded start."""
    value = env.get(name, "")
    if not value:
        return {"local1": _dev_key(var_dir, dev_file)}, "local1"
    keys = _parse_keys(value)
    if not keys:
        raise ValueError(f"{name} must be kid:secret[,kid:secret…]")
    if any(len(secret) < 32 for secret in keys.values()):
        raise ValueError(f"every {name} secret must be at least 32 characters long")
    if any(len(kid) > 16 for kid in keys):
        raise ValueError(f"an {name} key id has at most 16 characters")
    return keys, next(iter(keys))


def _audit_keys(env: Mapping[str, str], var_dir: Path) -> tuple[dict[str, str], str]:
    return _rotating_keys(env, "AUDIT_KEY", var_dir, "audit-dev.key")


def _public_base_url(env: Mapping[str, str], host: str, port: int) -> str:
    """`PUBLIC_BASE_URL` without a trailing slash; unset: this process's own address."""
    value = env.get("PUBLIC_BASE_URL", "").strip().rstrip("/")
    if not value:
        return f"http://{host}:{port}"
    if not _BASE_URL.fullmatch(value):
        raise ValueError(
            "PUBLIC_BASE_URL must be an http(s) address without query or fragment, "
            "e.g. https://xj.example.edu.cn"
        )
    if len(value) > MAX_PUBLIC_BASE_URL:
        raise ValueError(
            f"PUBLIC_BASE_URL has at most {MAX_PUBLIC_BASE_URL} characters (the form's QR "
            f"code must hold it): {value!r} has {len(value)}"
        )
    return value


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
            "login_free_failures",
            "login_delay_max_seconds",
            "login_pair_memory_seconds",
            "login_window_seconds",
            "login_max_failures_per_address",
            "login_attack_addresses",
            "login_sms_code_seconds",
            "login_sms_per_phone_per_hour",
            "login_sms_per_address_per_hour",
            "argon2_time_cost",
            "argon2_memory_kib",
            "db_pool_size",
            "check_lease_seconds",
            "render_lease_seconds",
            "uploads_per_student_per_hour",
            "uploads_per_student_per_day",
            "uploads_per_account_per_day",
            "import_dry_runs_per_hour",
            "transfer_start_tries_per_hour",
            "transfer_starts_per_school_per_day",
            "trusted_proxy_hops",
            "refresh_grace_seconds",
            "max_json_bytes",
            "max_json_depth",
            "stream_session_check_seconds",
            "archive_after_days",
            "archive_chunk",
            "second_factor_ticket_seconds",
            "second_factor_max_failures",
            "second_factor_failure_window_seconds",
            "student_reads_per_hour",
        )
        if name.upper() in env
    }
    if ints.get("login_free_failures", 1) < 1 or ints.get("login_attack_addresses", 2) < 2:
        raise ValueError("LOGIN_FREE_FAILURES must be 1 or more, LOGIN_ATTACK_ADDRESSES 2 or more")
    if ints.get("trusted_proxy_hops", 0) < 0:
        raise ValueError("TRUSTED_PROXY_HOPS must be 0 (no proxy) or more")
    if "TRUST_FORWARDED_FOR" in env:
        raise ValueError(
            "TRUST_FORWARDED_FOR is gone: set TRUSTED_PROXY_HOPS to the number of proxies "
            "in front of the API (1 behind one load balancer)"
        )
    if ints.get("access_token_seconds", 0) > 900:
        raise ValueError("ACCESS_TOKEN_SECONDS may not exceed 900 (15 minutes)")
    audit_keys, audit_active_kid = _audit_keys(env, var_dir)
    audit_seal_keys, audit_seal_active_kid = _rotating_keys(
        env, "AUDIT_SEAL_KEY", var_dir, "audit-seal-dev.key"
    )
    storage_keys, storage_active_kid = _rotating_keys(
        env, "STORAGE_KEY", var_dir, "storage-dev.key"
    )
    sse = env.get("S3_SERVER_SIDE_ENCRYPTION", base.s3_server_side_encryption).strip()
    if sse not in {"AES256", "aws:kms", ""}:
        raise ValueError("S3_SERVER_SIDE_ENCRYPTION must be AES256 (SSE-S3) or aws:kms (SSE-KMS)")
    digest_at = env.get("DIGEST_AT", base.digest_at).strip()
    if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", digest_at):
        raise ValueError("DIGEST_AT must be a time of day, HH:MM (China time), e.g. 08:30")
    host = env.get("HOST", base.host)
    archive_prefix, archive_storage_class = _archive_settings(env, base, ints)
    seed_demo = _bool(env.get("SEED_DEMO", "true"))
    second_factor_key = env.get("SECOND_FACTOR_KEY") or _dev_key(var_dir, "second-factor-dev.key")
    if len(second_factor_key) < 32:
        raise ValueError("SECOND_FACTOR_KEY must be at least 32 characters long")
    return Settings(
        var_dir=var_dir,
        database_url=env.get("DATABASE_URL") or None,
        redis_url=env.get("REDIS_URL") or None,
        redis_probe_url=env.get("REDIS_PROBE_URL", base.redis_probe_url),
        host=host,
        run_worker_inline=_bool(env.get("RUN_WORKER_INLINE", "true")),
        seed_demo=seed_demo,
        jwt_keys=keys,
        jwt_active_kid=active,
        jwt_issuer=env.get("JWT_ISSUER", base.jwt_issuer),
        jwt_audience=env.get("JWT_AUDIENCE", base.jwt_audience),
        storage=env.get("STORAGE", base.storage),
        s3_endpoint_url=env.get("S3_ENDPOINT_URL") or None,
        s3_region=env.get("S3_REGION", base.s3_region),
        s3_bucket=env.get("S3_BUCKET", base.s3_bucket),
        s3_access_key=env.get("S3_ACCESS_KEY") or None,
        s3_secret_key=env.get("S3_SECRET_KEY") or None,
        storage_keys=storage_keys,
        storage_active_kid=storage_active_kid,
        s3_server_side_encryption=sse,
        s3_sse_kms_key_id=env.get("S3_SSE_KMS_KEY_ID") or None,
        form_token_key=env.get("FORM_TOKEN_KEY") or _dev_key(var_dir, "form-token-dev.key"),
        public_base_url=_public_base_url(env, host, ints.get("port", base.port)),
        sms_url=env.get("SMS_URL") or None,
        sms_token=env.get("SMS_TOKEN") or None,
        push=_push_settings(env),
        audit_keys=audit_keys,
        audit_active_kid=audit_active_kid,
        audit_seal_keys=audit_seal_keys,
        audit_seal_active_kid=audit_seal_active_kid,
        openapi_enabled=_bool(env.get("OPENAPI_ENABLED", "true")),
        digest_at=digest_at,
        archive_prefix=archive_prefix,
        archive_storage_class=archive_storage_class,
        second_factor_required=_bool(
            env.get("SECOND_FACTOR_REQUIRED", "false" if seed_demo else "true")
        ),
        second_factor_key=second_factor_key,
        refusal_audit_deferred=_bool(env.get("REFUSAL_AUDIT_DEFERRED", "true")),
        **ints,
    )


# Where the service writes objects (its hot folders): the archive prefix is none of them.
HOT_PREFIXES = frozenset(
    {"photos/", "evidence/", "crops/", "forms/", "audit-anchors/", "messages/", "uploads/"}
)
# Storage classes an object must be restored from before it can be read (AWS, and the names
# Chinese S3-compatible stores use): the archive must stay readable through the same reads.
RESTORE_FIRST = frozenset(
    {"GLACIER", "DEEP_ARCHIVE", "ARCHIVE", "COLD_ARCHIVE", "DEEP_COLD_ARCHIVE", "DEEP_COLD"}
)


def _archive_settings(
    env: Mapping[str, str], base: Settings, ints: Mapping[str, int]
) -> tuple[str, str]:
    """`ARCHIVE_PREFIX` (a key prefix ending in /) and `ARCHIVE_STORAGE_CLASS` (an S3 class
    read without a restore), checked with `ARCHIVE_AFTER_DAYS` ≥ 0 and `ARCHIVE_CHUNK` ≥ 1."""
    prefix = env.get("ARCHIVE_PREFIX", base.archive_prefix).strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,30}/", prefix):
        raise ValueError("ARCHIVE_PREFIX must be one folder name ending in /, e.g. archive/")
    if prefix in HOT_PREFIXES:
        raise ValueError(f"ARCHIVE_PREFIX may not be {prefix}: the service writes there")
    storage_class = env.get("ARCHIVE_STORAGE_CLASS", base.archive_storage_class).strip().upper()
    if not re.fullmatch(r"[A-Z][A-Z_]{1,30}", storage_class):
        raise ValueError("ARCHIVE_STORAGE_CLASS must be an S3 storage class, e.g. STANDARD_IA")
    if storage_class in RESTORE_FIRST:
        raise ValueError(
            f"ARCHIVE_STORAGE_CLASS {storage_class} must be restored before each read; the "
            "archive stays readable on demand: use STANDARD_IA or GLACIER_IR"
        )
    if ints.get("archive_after_days", 0) < 0 or ints.get("archive_chunk", 1) < 1:
        raise ValueError("ARCHIVE_AFTER_DAYS must be 0 or more, ARCHIVE_CHUNK 1 or more")
    return prefix, storage_class


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return settings_from_env(os.environ)
