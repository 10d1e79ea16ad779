"""The per-request principal query with and without the support-grant look-up
(backend/accounts/principal.py), on PostgreSQL, inside a transaction that is rolled back.

    .venv/bin/python bench/principal_grant_cost.py postgresql://postgres@127.0.0.1:5432/<db>

`before` is the query without grants; `join` the look-up run for every account; `case` (what
principal.py uses) only for a sysadmin. A registrar and a sysadmin with 20 past grants.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid

import asyncpg

BEFORE = """SELECT a.role, a.name, a.phone, a.status, a.scope_kind, a.region_code, a.school,
 a.school_class, a.password_changed_at, a.must_change_password, s.revoked_at
FROM account a JOIN auth_session s ON s.account = a.id WHERE s.id = $1 AND a.id = $2"""
JOIN = """SELECT a.role, a.name, a.phone, a.status, a.scope_kind, a.region_code, a.school,
 a.school_class, a.password_changed_at, a.must_change_password, s.revoked_at,
 g.id, g.region_code, g.expires_at
FROM account a JOIN auth_session s ON s.account = a.id
LEFT JOIN support_grant g ON a.role = 'sysadmin' AND g.id = (
    SELECT sg.id FROM support_grant sg WHERE sg.requested_by = a.id AND sg.status = 'approved'
    ORDER BY sg.expires_at DESC LIMIT 1)
WHERE s.id = $1 AND a.id = $2"""
CASE = JOIN.replace(
    "ON a.role = 'sysadmin' AND g.id = (", "ON g.id = CASE WHEN a.role = 'sysadmin' THEN ("
).replace("LIMIT 1)\nWHERE", "LIMIT 1) END\nWHERE")

ACCOUNT = """INSERT INTO account (phone, name, role, status, password_hash, password_changed_at,
 must_change_password, scope_kind, region_code, created_at, last_active_at)
VALUES ($1, 'x', $2, 'active', 'x', now(), false, 'region', '330106', now(), now()) RETURNING id"""
GRANT = """INSERT INTO support_grant (requested_by, region_code, reason, hours, status,
 requested_at, decision_note, expires_at)
VALUES ($1, '330106', 'r', 8, 'approved', now(), '', now() - make_interval(days => $2))"""


class Rollback(Exception):
    pass


async def main(dsn: str, n: int = 3000) -> None:
    connection = await asyncpg.connect(dsn)
    async with connection.transaction():
        ids: dict[str, tuple[uuid.UUID, int]] = {}
        for role in ("registrar", "sysadmin"):
            account = await connection.fetchval(ACCOUNT, f"1999{len(ids):07d}", role)
            session = uuid.uuid4()
            await connection.execute(
                "INSERT INTO auth_session (id, account, created_at) VALUES ($1, $2, now())",
                session,
                account,
            )
            ids[role] = (session, account)
        for days in range(1, 21):
            await connection.execute(GRANT, ids["sysadmin"][1], days)
        for label, sql in (("before", BEFORE), ("join", JOIN), ("case", CASE)):
            for role, args in ids.items():
                for _ in range(200):
                    await connection.fetchrow(sql, *args)
                start = time.perf_counter()
                for _ in range(n):
                    await connection.fetchrow(sql, *args)
                took = (time.perf_counter() - start) / n * 1e6
                print(f"{label:6} {role:9} {took:7.1f} µs/query")
        raise Rollback


if __name__ == "__main__":
    with contextlib.suppress(Rollback):
        asyncio.run(main(sys.argv[1]))
