"""Command line: `python -m backend audit verify | audit anchor | audit reveal ID --reason R |
audit mentions (value on stdin) | migrate | seed | import |
archive run | archive status | archive verify | storage reencrypt`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from backend.accounts.principal import Principal, account_principal
from backend.accounts.scope import Scope
from backend.config import get_settings
from backend.db import close_pool, open_pool


async def _audit_verify() -> int:
    from backend.accounts.audit_verify import AnchorError, verify
    from backend.storage import make_storage

    try:
        result = await verify(make_storage(get_settings()))
    except AnchorError as error:
        print(f"audit log NOT VERIFIED: {error}")
        return 1
    if not result.ok:
        where = f" at row id={result.broken_id}" if result.broken_id is not None else ""
        print(
            f"audit log BROKEN{where} (chain {result.broken_chain}, seq {result.broken_seq}): "
            f"{result.reason}"
        )
        return 1
    if result.anchor is None:
        print(
            f"audit log intact: {result.rows} rows verified with the audit key; no anchor yet, "
            "so removed newest rows would go unnoticed (`python -m backend audit anchor`)"
        )
    else:
        when = result.anchor.at.isoformat(timespec="seconds")
        print(
            f"audit log intact: {result.rows} rows verified with the audit key; every chain "
            f"reaches the anchor of {when}"
        )
    return 0


async def _audit_anchor() -> int:
    from backend.accounts.audit_verify import AnchorError, anchor
    from backend.storage import make_storage

    try:
        signed = await anchor(make_storage(get_settings()))
    except AnchorError as error:
        print(f"audit log NOT ANCHORED: {error}")
        return 1
    print(
        f"audit log anchored at {signed.at.isoformat(timespec='seconds')}: "
        f"{len(signed.heads)} chains, {sum(s for s, _ in signed.heads.values())} rows"
    )
    return 0


async def _audit_reveal(row_id: int, reason: str) -> int:
    """One audit row with its sealed values opened, for an investigator holding the seal
    keys; the reveal is itself audited, with its reason."""
    import json

    from backend.accounts import audit
    from backend.accounts.audit_seal import SealBroken, Sealer
    from backend.accounts.tables import AuditLog

    row = await AuditLog.select().where(AuditLog.id == row_id).first()
    if row is None:
        print(f"no audit row {row_id}")
        return 2
    sealer = Sealer.of()
    try:
        opened = {
            side: sealer.reveal(json.loads(row[side])) if row[side] else None
            for side in ("before", "after")
        }
    except SealBroken as error:
        print(f"audit row {row_id} does not open: {error}")
        return 1
    actor = audit.Actor(role="system", client_addr="cli", request_id="cli-audit-reveal")
    await audit.record(actor, "reveal", "audit_log", row_id, after={"reason": reason[:200]})
    shown = {**row, **opened, "at": row["at"].isoformat()}
    print(json.dumps(shown, ensure_ascii=False, indent=1, default=str))
    return 0


async def _audit_mentions() -> int:
    """The ids of the audit rows that hold the value read from stdin (kept out of the shell
    history and the process list), found by keyed hash."""
    from backend.accounts.audit import rows_mentioning

    value = sys.stdin.readline().strip()
    if not value:
        print("give the value on stdin")
        return 2
    ids = await rows_mentioning(value)
    print(" ".join(str(i) for i in ids) if ids else "no audit row mentions it")
    return 0


async def _migrate() -> int:
    from backend.migrate import migrate

    await migrate()
    return 0


async def _seed() -> int:
    from backend.seed import format_logins, seed_if_empty

    logins = await seed_if_empty(get_settings())
    print(format_logins(logins) if logins else "database already has accounts; nothing seeded")
    return 0


async def _import(path: str, phone: str, dry_run: bool) -> int:
    """The same import as the API's, run here instead of in a worker, acting as `phone`."""
    import json
    from pathlib import Path

    from redis.asyncio import Redis

    from backend.accounts.audit import Actor
    from backend.accounts.tables import Account
    from backend.records import imports
    from backend.redis_server import resolve_redis

    account = await Account.select().where(Account.phone == phone).first()
    if account is None:
        print(f"no account with phone {phone}")
        return 2
    actor = Actor(account["id"], account["role"], "cli", "cli-import")
    principal = _cli_principal(account)
    content = await asyncio.to_thread(Path(path).read_bytes)
    settings = get_settings()
    url, private = await resolve_redis(settings)
    redis = Redis.from_url(url)
    try:
        job_id = await imports.start_import(
            principal, actor, redis, settings, Path(path).name, content, dry_run, outbox=None
        )
        status = await imports.run_import(job_id, redis)
        report = await imports.get_import(Scope.of_account(account), actor, redis, job_id)
    finally:
        await redis.aclose()
        if private is not None:
            private.stop()
    print(
        json.dumps(
            {
                "status": status,
                "summary": report.summary,
                "error_count": report.error_count,
                "errors": report.errors[:50],
            },
            ensure_ascii=False,
            indent=1,
        )
    )
    return 0 if status == "done" else 1


async def _archive(word: str) -> int:
    """`archive run`: a whole archive run here, chunk after chunk (the worker's daily run does
    the same in jobs); `archive status`: the newest run's progress."""
    import json

    from redis.asyncio import Redis

    from backend.parents.archive_tasks import latest_run, run_inline
    from backend.redis_server import resolve_redis
    from backend.storage import make_storage

    settings = get_settings()
    url, private = await resolve_redis(settings)
    redis = Redis.from_url(url)
    try:
        if word == "run" and await run_inline(make_storage(settings), settings, redis) is None:
            print("an archive run is still going (python -m backend archive status)")
            return 1
        latest = await latest_run(redis)
    finally:
        await redis.aclose()
        if private is not None:
            private.stop()
    if latest is None:
        print("no archive run yet")
        return 0
    run_id, done = latest
    print(json.dumps({"run": run_id, **done}, ensure_ascii=False, indent=1))
    return 1 if word == "run" and done.get("failed", "0") != "0" else 0


async def _archive_verify() -> int:
    from backend.parents.archive_verify import verify_archive
    from backend.storage import make_storage

    result = await verify_archive(make_storage(get_settings()))
    for problem in result.bad:
        print(f"archive NOT VERIFIED: {problem}")
    if not result.bad:
        print(f"archive intact: {result.checked} objects match the hash their audit row records")
    return 1 if result.bad else 0


async def _archive_run() -> int:
    return await _archive("run")


async def _archive_status() -> int:
    return await _archive("status")


async def storage_reencrypt(batch: int = 200) -> int:
    """Every stored object brought to the current encryption (after a new STORAGE_KEY, or
    once for the objects written before encryption), progress printed after each batch."""
    from backend.storage import ReencryptResult, make_storage

    def progress(done: ReencryptResult) -> None:
        print(
            f"storage reencrypt: {done.seen} objects seen, {done.rewritten} re-encrypted, "
            f"{len(done.failed)} failed",
            flush=True,
        )

    result = await make_storage(get_settings()).reencrypt(batch, progress)
    for problem in result.failed:
        print(f"storage reencrypt FAILED: {problem}")
    print(
        f"storage reencrypt done: {result.rewritten} of {result.seen} objects re-encrypted"
        + (f", {len(result.failed)} failed (listed above)" if result.failed else "")
    )
    return 1 if result.failed else 0


def _cli_principal(account: dict[str, Any]) -> Principal:
    return account_principal(account)


async def _run(args: argparse.Namespace) -> int:
    await open_pool(get_settings())
    try:
        words = tuple(args.command)
        if words[0] == "import":
            return await _import(args.file, args.account, args.dry_run)
        if words[:2] == ("audit", "reveal"):
            return await _audit_reveal(int(words[2]), args.reason)
        if words == ("storage", "reencrypt"):
            return await storage_reencrypt(args.batch)
        return await COMMANDS[words]()
    finally:
        await close_pool()


COMMANDS = {
    ("audit", "verify"): _audit_verify,
    ("audit", "anchor"): _audit_anchor,
    ("audit", "mentions"): _audit_mentions,
    ("migrate",): _migrate,
    ("seed",): _seed,
    ("archive", "run"): _archive_run,
    ("archive", "status"): _archive_status,
    ("archive", "verify"): _archive_verify,
    ("storage", "reencrypt"): storage_reencrypt,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend")
    parser.add_argument(
        "command",
        nargs="+",
        help="audit verify | audit anchor | audit reveal ID --reason R | audit mentions "
        "(value on stdin) | migrate | seed | import FILE --account PHONE | "
        "archive run | archive status | archive verify | storage reencrypt [--batch N]",
    )
    parser.add_argument("--account", help="import: the phone of the account to act as")
    parser.add_argument("--reason", help="audit reveal: why (recorded in the audit log)")
    parser.add_argument("--dry-run", action="store_true", help="import: check only")
    parser.add_argument(
        "--batch", type=int, default=200, help="storage reencrypt: objects per batch"
    )
    args = parser.parse_args(argv)
    words = tuple(args.command)
    if words[0] == "import" and len(words) == 2 and args.account:
        args.file = words[1]
    elif words[:2] == ("audit", "reveal"):
        if len(words) != 3 or not words[2].isdigit() or not (args.reason or "").strip():
            parser.error("audit reveal ID --reason WHY")
    elif words not in COMMANDS:
        parser.error(f"unknown command: {' '.join(words)}")
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
