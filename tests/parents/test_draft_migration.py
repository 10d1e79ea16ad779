"""The migration that gives correction drafts a state and splits `outdated_form` keeps what
existing rows said: a draft the teacher confirmed becomes `legible` (who and when kept), the
others stay `draft`; an `outdated_form` check becomes `record_changed` when its record had
changed since printing, else `form_superseded`. Run on a database of its own, migrated up to
the migration before, filled the old way, then migrated forwards."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import asyncpg
import pytest

from backend.db import is_postgres

BEFORE = "2026-12-01T02:40:00:000000"
ROOT = Path(__file__).resolve().parents[2]

OLD_ROWS = [
    "INSERT INTO account(id, phone, role, name, password_hash, scope_kind) "
    "VALUES (1, '13800000000', 'teacher', 't', 'x', 'class')",
    "INSERT INTO upload(id, student, campaign, school, school_class, uploaded_by, status, "
    "storage_key, content_hash, width, height, created_at, region_code) VALUES "
    "(1, 1, 1, 1, 1, 1, 'outdated_form', 'k1', 'h1', 1, 1, '2026-11-30 10:00:00+00', ''), "
    "(2, 1, 1, 1, 1, 1, 'outdated_form', 'k2', 'h2', 1, 1, '2026-11-30 10:00:00+00', ''), "
    "(3, 1, 1, 1, 1, 1, 'matches', 'k3', 'h3', 1, 1, '2026-11-30 10:00:00+00', '')",
    "INSERT INTO upload_check(id, upload, verdict, message, outdated, created_at) VALUES "
    "(1, 1, 'outdated_form', 'm', '[]', '2026-11-30 10:00:00+00'), "
    "(2, 2, 'outdated_form', 'm', '[\"phone\"]', '2026-11-30 10:00:00+00'), "
    "(3, 3, 'matches', 'm', '[]', '2026-11-30 10:00:00+00')",
    "INSERT INTO correction_draft(id, upload, student, school, school_class, region_code, "
    "field_code, crop_key, status, legible_confirmed_by, legible_confirmed_at, created_at) VALUES "
    "(1, 3, 1, 1, 1, '330106', 'phone', 'c1', 'draft', 1, '2026-11-30 11:00:00+00', "
    "'2026-11-30 10:00:00+00'), "
    "(2, 3, 1, 1, 1, '330106', 'name', 'c2', 'draft', NULL, NULL, '2026-11-30 10:00:00+00')",
]
CHECKS = [
    "SELECT id, state, decided_by FROM correction_draft ORDER BY id",
    "SELECT id, status FROM upload ORDER BY id",
    "SELECT upload, verdict FROM upload_check ORDER BY upload",
]
EXPECTED = [
    [(1, "legible", 1), (2, "draft", None)],
    [(1, "form_superseded"), (2, "record_changed"), (3, "matches")],
    [(1, "form_superseded"), (2, "record_changed"), (3, "matches")],
]


def _piccolo(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "piccolo.main", "migrations", "forwards", "backend", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )


async def test_existing_drafts_and_verdicts_are_carried_over(tmp_path: Path) -> None:
    env = dict(os.environ, VAR_DIR=str(tmp_path))
    if not is_postgres():
        env.pop("DATABASE_URL", None)
        _piccolo(env, BEFORE)
        with sqlite3.connect(tmp_path / "registry.sqlite3") as db:
            for statement in OLD_ROWS:
                db.execute(statement)
        _piccolo(env)
        with sqlite3.connect(tmp_path / "registry.sqlite3") as db:
            found = [db.execute(q).fetchall() for q in CHECKS]
        assert found == EXPECTED
        return

    url = os.environ["DATABASE_URL"]
    parsed = urlparse(url)
    name = parsed.path.lstrip("/").removesuffix("_test") + "_migration_test"
    own = url.replace(parsed.path, "/" + name)
    admin = await asyncpg.connect(url.replace(parsed.path, "/postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
        env["DATABASE_URL"] = own
        _piccolo(env, BEFORE)
        db = await asyncpg.connect(own)
        try:
            # rows of the old shape, without the campaign and students they would hang on
            await db.execute("SET session_replication_role = replica")
            for statement in OLD_ROWS:
                await db.execute(statement)
        finally:
            await db.close()
        _piccolo(env)
        db = await asyncpg.connect(own)
        try:
            found = [[tuple(r) for r in await db.fetch(q)] for q in CHECKS]
        finally:
            await db.close()
        assert found == EXPECTED
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(autouse=True)
def clean() -> None:
    """Overrides the suite's table-cleaning fixture: this test brings its own database."""
