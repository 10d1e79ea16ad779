"""Proof for children without a resident ID card (notice 001, appendix 2, school item 4): a
record registered with another kind of ID document needs that document (补充上传使用其他证件类型
的学生证明材料: `id_scan`), and a record without an ID number, or still on a J registry
number, needs the school's proof that the child studies here (无居民身份证件号学生就读证明:
`enrolment_proof`). The registrar uploads them as evidence photos (same rules, same storage,
same masks: `records.evidence`), kept as `Evidence` of `SubjectKind.student_proof` whose
subject is the student. The record's read lists what is still missing (`missing_for`); the
counts per school say how many records still miss it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.scope import get_scoped, in_scope_sql
from backend.db import fetch_rows, is_postgres, transaction
from backend.errors import BadRequest
from backend.records.catalog import RESIDENT_ID
from backend.records.change_requests import EvidenceIn, attach_evidence
from backend.records.review_tables import Evidence, EvidenceKind, SubjectKind
from backend.records.reviews import place_of
from backend.records.service import load_fields
from backend.records.tables import Student

PROOF_LABEL = {
    EvidenceKind.id_scan: "所持证件（非居民身份证）的证件材料",
    EvidenceKind.enrolment_proof: "无居民身份证件号学生的就读证明",
}
PROOF_KINDS = frozenset(PROOF_LABEL)


def proof_needed(fields: Mapping[str, str], registry_number: str) -> list[EvidenceKind]:
    """Which proof a record needs, in a fixed order; none for a resident ID card with its
    number and a G registry number."""
    needed = []
    if fields.get("id_type") != RESIDENT_ID and fields.get("id_number"):
        needed.append(EvidenceKind.id_scan)
    if not fields.get("id_number") or registry_number.startswith("J"):
        needed.append(EvidenceKind.enrolment_proof)
    return needed


async def missing_for(
    student_id: int, fields: Mapping[str, str], registry_number: str
) -> list[EvidenceKind]:
    """The proof the record needs and has not got (a query only when it needs some)."""
    needed = proof_needed(fields, registry_number)
    if not needed:
        return []
    present = await _present([student_id])
    return [kind for kind in needed if kind not in present.get(student_id, set())]


async def _present(student_ids: Sequence[int]) -> dict[int, set[EvidenceKind]]:
    found: dict[int, set[EvidenceKind]] = {}
    rows = await Evidence.select(Evidence.subject_id, Evidence.kind).where(
        (Evidence.subject_kind == SubjectKind.student_proof.value)
        & Evidence.subject_id.is_in(list(student_ids))
    )
    for row in rows:
        found.setdefault(row["subject_id"], set()).add(EvidenceKind(row["kind"]))
    return found


@dataclass(frozen=True, slots=True)
class ProofState:
    student_id: int
    needed: list[EvidenceKind]
    missing: list[EvidenceKind]
    evidence: list[dict[str, Any]]  # id, kind, created_at of each uploaded photo


async def _student(principal: Principal, actor: Actor, student_id: int) -> dict[str, Any]:
    return await get_scoped(
        actor, principal.scope, Student, Student.id == student_id, "student", student_id
    )


async def proof_of(principal: Principal, actor: Actor, student_id: int) -> ProofState:
    """What proof the record needs, what was uploaded and what is missing."""
    student = await _student(principal, actor, student_id)
    return await _state(student)


async def _state(student: dict[str, Any]) -> ProofState:
    needed = proof_needed(load_fields(student["fields"]), student["registry_number"])
    evidence = (
        await Evidence.select(Evidence.id, Evidence.kind, Evidence.created_at)
        .where(
            (Evidence.subject_kind == SubjectKind.student_proof.value)
            & (Evidence.subject_id == student["id"])
        )
        .order_by(Evidence.id)
    )
    present = {EvidenceKind(e["kind"]) for e in evidence}
    return ProofState(
        student["id"], needed, [k for k in needed if k not in present], list(evidence)
    )


class ProofNotNeeded(BadRequest):
    code = "proof_not_needed"
    message = "该学生持居民身份证并已有身份证件号，无需上传证明材料"


class ProofKindNotNeeded(BadRequest):
    code = "proof_kind_not_needed"
    message = "该学生不需要这类证明材料"


class ProofRequired(BadRequest):
    code = "proof_required"
    message = "请上传证明材料照片"


async def check_upload(
    principal: Principal, actor: Actor, student_id: int, kinds: Iterable[EvidenceKind]
) -> None:
    """Refuse before anything is stored: who uploads, for which record, which kinds."""
    require(principal, Action.upload_id_proof)
    student = await _student(principal, actor, student_id)
    needed = proof_needed(load_fields(student["fields"]), student["registry_number"])
    if not needed:
        raise ProofNotNeeded()
    given = list(kinds)
    if not given:
        raise ProofRequired()
    wrong = sorted({k.value for k in given if k not in needed})
    if wrong:
        raise ProofKindNotNeeded(field_errors={kind: ProofKindNotNeeded.message for kind in wrong})


async def upload(
    principal: Principal, actor: Actor, student_id: int, stored: Sequence[EvidenceIn]
) -> ProofState:
    """Attach the stored photos (`check_upload` first, then `evidence.store_photos`) as the
    record's proof. Audited."""
    place = await place_of(student_id)
    now = datetime.now(UTC)
    async with transaction():
        await attach_evidence(principal, place, student_id, stored, now, SubjectKind.student_proof)
        await audit.record(
            actor,
            "upload_proof",
            "student",
            student_id,
            after={"kinds": sorted({item.kind.value for item in stored})},
        )
    student = await Student.select().where(Student.id == student_id).first()
    assert student is not None
    return await _state(student)


# -- counts ---------------------------------------------------------------------------------


@dataclass
class ProofCount:
    needing: int = 0  # records that need proof
    missing: int = 0  # of them, records still missing some


def _id_type_sql() -> str:
    if is_postgres():
        return "s.fields->>'id_type'"
    return "json_extract(s.fields, '$.id_type')"


def _has(kind: EvidenceKind) -> str:
    return (
        "EXISTS (SELECT 1 FROM evidence e WHERE e.subject_kind = 'student_proof' "
        f"AND e.subject_id = s.id AND e.kind = '{kind.value}')"
    )


async def counts_by_school(principal: Principal) -> dict[int, ProofCount]:
    """Per school in the caller's scope: the enrolled records that need proof and those still
    missing some, in one grouped statement (the rule of `proof_needed`, as SQL)."""
    inside, args = in_scope_sql(principal.scope, "s", student="id")
    needs_document = (
        f"(COALESCE({_id_type_sql()}, '') <> '{RESIDENT_ID}' AND s.id_number IS NOT NULL)"
    )
    needs_proof = "(s.id_number IS NULL OR s.registry_number LIKE 'J%')"
    missing = (
        f"(({needs_document} AND NOT {_has(EvidenceKind.id_scan)}) "
        f"OR ({needs_proof} AND NOT {_has(EvidenceKind.enrolment_proof)}))"
    )
    rows = await fetch_rows(
        f"""
SELECT s.school, COUNT(*) AS needing,
       SUM(CASE WHEN {missing} THEN 1 ELSE 0 END) AS missing
FROM student s
WHERE s.status = 'enrolled' AND ({needs_document} OR {needs_proof}) AND {inside}
GROUP BY s.school""",
        *args,
    )
    return {r["school"]: ProofCount(int(r["needing"]), int(r["missing"])) for r in rows}
