"""Command line: `python -m backend audit verify | migrate | seed`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from backend.config import get_settings
from backend.db import close_pool, open_pool


async def _audit_verify() -> int:
    from backend.accounts.audit import verify

    result = await verify()
    if result.ok:
        print(f"audit log intact: {result.rows} rows verified")
        return 0
    print(
        f"audit log BROKEN at row id={result.broken_id} "
        f"(chain {result.broken_chain}, seq {result.broken_seq}): {result.reason}"
    )
    return 1


async def _migrate() -> int:
    from backend.migrate import migrate

    await migrate()
    return 0


async def _seed() -> int:
    from backend.seed import format_logins, seed_if_empty

    logins = await seed_if_empty(get_settings())
    print(format_logins(logins) if logins else "database already has accounts; nothing seeded")
    return 0


COMMANDS = {("audit", "verify"): _audit_verify, ("migrate",): _migrate, ("seed",): _seed}


async def _run(words: tuple[str, ...]) -> int:
    await open_pool(get_settings())
    try:
        return await COMMANDS[words]()
    finally:
        await close_pool()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend")
    parser.add_argument("command", nargs="+", help="audit verify | migrate | seed")
    words = tuple(parser.parse_args(argv).command)
    if words not in COMMANDS:
        parser.error(f"unknown command: {' '.join(words)}")
    return asyncio.run(_run(words))


if __name__ == "__main__":
    sys.exit(main())
