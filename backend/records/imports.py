"""Import jobs: a spreadsheet uploaded, then read, checked and written by a background job
whose progress the caller polls. A dry run reports what a real run would do and changes
nothing, except that it never compares ID numbers with other schools' records: otherwise any
registrar could ask, file after file, whether an ID number is enrolled anywhere in the
country. Those duplicates are flagged by the real run, which is all-or-nothing and audited.
Dry runs are audited too (the file's hash and row count) and limited per account and hour.
Importing the same file again changes nothing.

Both runs report the rows whose ID number another record of the same school holds too (a
child entered twice, or a typing error): `same_school_duplicates` and, per row, its masked ID
number and how many records of the school hold it. The real run flags every such record
`duplicate_id_in_school`, as it flags `duplicate_id` across schools. The importer may read
every record of those schools anyway, so the dry run tells this much.

An import creates students and updates their ordinary fields; a changed key field (姓名, 性别,
出生日期, …) of a student already on the roll is not written but becomes a key-data change
request, one per field, listed in the report (`records.import_key_changes`)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime
from typing import Any, cast

from redis.asyncio import Redis

from backend import progress, quota
from backend.accounts import audit, org
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal, account_principal
from backend.accounts.scope import Scope, get_scoped, scoped
from backend.accounts.tables import Account, School, SchoolClass
from backend.config import Settings
from backend.db import json_value, transaction
from backend.errors import (
    BadRequest,
    InvalidCharacters,
    PayloadTooLarge,
    TooManyAttempts,
)
from backend.masking import mask_id_number
from backend.outbox import Outbox
from backend.records.catalog import KEY_FIELDS
from backend.records.controls import controls_of, province_of
from backend.records.holds import RecordChangeOpen
from backend.records.ids import registry_number_for
from backend.records.import_key_changes import empty_report, request_key_changes
from backend.records.importer import MAX_BYTES, ImportFileError, ParsedFile, RowError, parse
from backend.records.schemas import ImportPhase, ImportRead
from backend.records.service import (
    RecordIn,
    WriteSummary,
    same_school_duplicates,
    write_records,
)
from backend.records.tables import IMPORT_STATUS, ImportFile, ImportJob, ImportStatus, Student

MAX_STORED_ERRORS = 1000


class FileTooLarge(PayloadTooLarge):
    code = "file_too_large"
    message = f"文件不能超过 {MAX_BYTES // 1024 // 1024} MB，请拆分后再导入"


class DryRunDone(Exception):
    """Raised to roll back the dry run's writes once their outcome is counted."""


class HeldRows(Exception):
    """Rows that would change records with a status change open on them: the import fails
    (all or nothing) with one error per row, and the school imports again once it is done."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} rows held")
        self.errors = errors


HELD_ROW = (
    "该学生有正在办理的学籍异动（如转学），办结前不能修改学籍信息，请删去此行或异动办结后再导入"
)


async def _take_dry_run(redis: Redis, settings: Settings, principal: Principal) -> None:
    hourly = quota.Quota(
        f"import-dry-run:account:{principal.account_id}", settings.import_dry_runs_per_hour, 3600
    )
    refused = await quota.take(redis, [hourly])
    if refused is not None:
        raise TooManyAttempts(
            f"试导入（仅检查）每小时最多 {hourly.limit} 次，"
            f"请 {max(refused.retry_after // 60, 1)} 分钟后再试",
            code="too_many_dry_runs",
            retry_after=refused.retry_after,
        )


async def start_import(
    principal: Principal,
    actor: Actor,
    redis: Redis,
    settings: Settings,
    filename: str,
    content: bytes,
    dry_run: bool,
    outbox: Outbox | None,
) -> int:
    """Store the file and queue its job (`run_import`), or, with no `outbox`, leave the job
    for the caller to run itself (the command line)."""
    require(principal, Action.import_records)
    if "\x00" in filename:  # multipart bodies pass the input check unread: the name is checked here
        raise InvalidCharacters()
    if len(content) > MAX_BYTES:
        raise FileTooLarge()
    if not content:
        raise BadRequest("文件是空的", code="empty_file")
    if dry_run:
        await _take_dry_run(redis, settings, principal)
    async with transaction():
        rows = await ImportJob.insert(
            ImportJob(
                account=principal.account_id,
                school=principal.scope.school_id,
                region_code=principal.scope.region_code,
                filename=filename[:200],
                dry_run=dry_run,
                status=ImportStatus.queued.value,
                created_at=datetime.now(UTC),
            )
        )
        job_id = int(rows[0]["id"])
        await ImportFile.insert(ImportFile(job=job_id, content=content))
        await audit.record(
            actor,
            "create",
            "import_job",
            job_id,
            after={
                "filename": filename,
                "dry_run": dry_run,
                "bytes": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
            },
        )
        if outbox is not None:
            await outbox.job("run_import_job", job_id, job_id=f"import:{job_id}")
    return job_id


async def _resolve(
    parsed: ParsedFile, scope: Scope
) -> tuple[list[tuple[Any, ...]], list[RowError]]:
    """Each row's school (inside the importer's scope) and class key."""
    errors: list[RowError] = []
    query = School.select(School.id, School.code, School.region_code)
    schools = {s["code"]: s for s in await scoped(query, scope, School)}
    default_school = next(iter(schools.values())) if scope.school_id and len(schools) == 1 else None
    resolved: list[tuple[Any, ...]] = []
    for row in parsed.rows:
        code = row.org.get("school_code", "")
        school = schools.get(code) if code else default_school
        if school is None:
            message = (
                "请填写学校标识码" if not code else f"学校标识码 {code} 不存在或不在您的管辖范围内"
            )
            errors.append(RowError(row.row, "学校标识码", message))
            continue
        resolved.append((row, school))
    return resolved, errors


async def _class_ids(
    school_keys: set[tuple[int, int, str]], actor: Actor
) -> dict[tuple[int, int, str], int]:
    found: dict[tuple[int, int, str], int] = {}
    school_ids = sorted({k[0] for k in school_keys})
    if school_ids:
        for c in await SchoolClass.select().where(SchoolClass.school.is_in(school_ids)):
            found[(c["school"], c["grade"], c["name"])] = c["id"]
    for key in sorted(school_keys - set(found)):
        found[key] = await org.create_class(actor, key[0], key[1], key[2])
    return found


async def _write(
    job_id: int, redis: Redis, actor: Actor, resolved: list[tuple[Any, ...]], dry_run: bool
) -> tuple[WriteSummary, list[dict[str, Any]]]:
    """The rows written, and the rows whose ID number another record of their school holds."""
    keys = {
        (school["id"], int(row.org["grade"]), row.org["class_name"]) for row, school in resolved
    }
    class_ids = await _class_ids(keys, actor)
    records = [
        RecordIn(
            registry_number=row.org.get("registry_number")
            or registry_number_for(
                row.values.get("id_type"),
                row.values.get("id_number"),
                school["code"],
                row.values.get("name", ""),
                row.values.get("birth_date"),
            ),
            school_id=school["id"],
            class_id=class_ids[(school["id"], int(row.org["grade"]), row.org["class_name"])],
            region_code=school["region_code"],
            fields=row.values,
        )
        for row, school in resolved
    ]

    async def written(done: int) -> None:
        await progress.report(
            redis, "import", job_id, phase="writing", done=done, total=len(records)
        )

    # key fields (national, and those the records' provinces made key) go to review instead
    hold = set(KEY_FIELDS)
    for province in {province_of(r.region_code) for r in records}:
        hold |= {code for code, c in (await controls_of(province)).items() if c.key}
    try:
        summary = await write_records(
            actor, records, progress=written, flag_duplicates=not dry_run, hold=hold
        )
    except RecordChangeOpen as exc:
        raise HeldRows(await _held_rows(resolved, records, exc.student_ids)) from None
    return summary, await _duplicate_rows(resolved, records, summary)


async def _held_rows(
    resolved: list[tuple[Any, ...]], records: list[RecordIn], student_ids: tuple[int, ...]
) -> list[RowError]:
    keys = {
        (row["school"], row["registry_number"])
        for row in await Student.select(Student.school, Student.registry_number).where(
            Student.id.is_in(list(student_ids) or [0])
        )
    }
    return [
        RowError(row.row, "学籍号", HELD_ROW)
        for (row, _), record in zip(resolved, records, strict=True)
        if (record.school_id, record.registry_number) in keys
    ]


async def _duplicate_rows(
    resolved: list[tuple[Any, ...]], records: list[RecordIn], summary: WriteSummary
) -> list[dict[str, Any]]:
    counts = await same_school_duplicates(summary.student_ids)
    if not counts:
        return []
    keys = {
        (row["school"], row["registry_number"]): row["id"]
        for row in await Student.select(Student.id, Student.school, Student.registry_number).where(
            Student.id.is_in(sorted(counts))
        )
    }
    found = []
    for (row, _), record in zip(resolved, records, strict=True):
        student_id = keys.get((record.school_id, record.registry_number))
        if student_id is not None:
            found.append(
                {
                    "row": row.row,
                    "id_number": mask_id_number(record.fields.get("id_number")),
                    "records_in_school": counts[student_id],
                }
            )
    return sorted(found, key=lambda r: r["row"])


async def run_import(job_id: int, redis: Redis) -> str:
    """The job: idempotent (a finished job is left alone; an unfinished one runs again from
    the start, which is safe because the write is one transaction)."""
    job = await ImportJob.select().where(ImportJob.id == job_id).first()
    if job is None or job["status"] in (ImportStatus.done, ImportStatus.failed):
        return "skipped"
    account = await Account.select().where(Account.id == job["account"]).first()
    file = await ImportFile.select(ImportFile.content).where(ImportFile.job == job_id).first()
    if account is None or file is None:
        return await _finish(
            job_id, ImportStatus.failed, [RowError(0, "", "导入任务数据缺失")], {}, 0
        )
    actor = Actor(account["id"], account["role"], None, f"import:{job_id}")
    status = await _run(job, account, actor, bytes(file["content"]), redis)
    if job["dry_run"]:
        await _audit_dry_run(job_id, actor, bytes(file["content"]))
    return status


async def _audit_dry_run(job_id: int, actor: Actor, content: bytes) -> None:
    """What was asked and how much, never what: the file's hash, its size and counts."""
    done = (
        await ImportJob.select(ImportJob.status, ImportJob.total_rows, ImportJob.error_count)
        .where(ImportJob.id == job_id)
        .first()
    )
    assert done is not None
    await audit.record(
        actor,
        "dry_run",
        "import_job",
        job_id,
        after={
            "sha256": hashlib.sha256(content).hexdigest(),
            "bytes": len(content),
            "rows": done["total_rows"],
            "errors": done["error_count"],
            "status": done["status"],
        },
    )


async def _run(
    job: dict[str, Any], account: dict[str, Any], actor: Actor, content: bytes, redis: Redis
) -> str:
    job_id = int(job["id"])
    await IMPORT_STATUS.move(job_id, ImportStatus.running)
    await progress.report(redis, "import", job_id, phase="reading", done=0, total=0)
    try:
        # Seconds of CPU for a large file: off the event loop, which may be the API's.
        parsed = await asyncio.to_thread(parse, job["filename"], content)
    except ImportFileError as exc:
        return await _finish(
            job_id, ImportStatus.failed, [RowError(0, "", exc.message)], {"code": exc.code}, 0
        )
    resolved, errors = await _resolve(parsed, Scope.of_account(account))
    errors = parsed.errors + errors
    if errors:
        return await _finish(
            job_id,
            ImportStatus.failed,
            errors,
            {"rows": parsed.total_rows, "imported": 0},
            parsed.total_rows,
        )
    dry_run = bool(job["dry_run"])
    key_changes = empty_report()
    try:
        async with transaction():
            summary, duplicates = await _write(job_id, redis, actor, resolved, dry_run)
            key_changes = await request_key_changes(
                job_id,
                account_principal(account),
                actor,
                [row.row for row, _ in resolved],
                summary.held,
                dry_run=dry_run,
            )
            if dry_run:
                raise DryRunDone
            await audit.record(
                actor,
                "import",
                "import_job",
                job_id,
                after=_summary(summary, parsed, duplicates, key_changes),
            )
    except DryRunDone:
        pass
    except (HeldRows, RecordChangeOpen) as exc:
        # RecordChangeOpen itself: a change opened while the key-field requests were made
        held = exc.errors if isinstance(exc, HeldRows) else [RowError(0, "", HELD_ROW)]
        return await _finish(
            job_id,
            ImportStatus.failed,
            held,
            {"rows": parsed.total_rows, "imported": 0, "code": RecordChangeOpen.code},
            parsed.total_rows,
        )
    report = {
        **_summary(summary, parsed, duplicates, key_changes),
        "same_school_duplicate_rows": duplicates,
        "key_change_rows": key_changes["key_change_rows"],
    }
    return await _finish(job_id, ImportStatus.done, [], report, parsed.total_rows)


def _summary(
    summary: WriteSummary,
    parsed: ParsedFile,
    duplicates: list[dict[str, Any]],
    key_changes: dict[str, Any],
) -> dict[str, int]:
    """The counts (audited with the import: no personal data)."""
    return {
        "rows": parsed.total_rows,
        "created": summary.created,
        "updated": summary.updated,
        "unchanged": summary.unchanged,
        "flagged": summary.flagged,
        "same_school_duplicates": len(duplicates),
        "key_changes": key_changes["key_changes"],
        "key_change_requests_created": key_changes["key_change_requests_created"],
    }


async def _finish(
    job_id: int, status: ImportStatus, errors: list[RowError], summary: dict[str, Any], total: int
) -> str:
    errors = sorted(errors, key=lambda e: e.row)
    await IMPORT_STATUS.move(
        job_id,
        status,
        values={
            ImportJob.total_rows: total,
            ImportJob.error_count: len(errors),
            ImportJob.errors: json.dumps(
                [e.as_dict() for e in errors[:MAX_STORED_ERRORS]], ensure_ascii=False
            ),
            ImportJob.summary: json.dumps(summary),
            ImportJob.finished_at: datetime.now(UTC),
        },
    )
    return status.value


async def get_import(scope: Scope, actor: Actor, redis: Redis, job_id: int) -> ImportRead:
    row = await get_scoped(actor, scope, ImportJob, ImportJob.id == job_id, "import_job", job_id)
    reported = await progress.read(redis, "import", job_id)
    errors, summary = row["errors"], row["summary"]
    return ImportRead(
        id=row["id"],
        filename=row["filename"],
        dry_run=bool(row["dry_run"]),
        status=row["status"],
        phase=cast(ImportPhase | None, reported.get("phase")),
        done=int(reported.get("done", 0)),
        total=int(reported.get("total", row["total_rows"])),
        error_count=row["error_count"],
        errors=json_value(errors),
        summary=json_value(summary),
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )
