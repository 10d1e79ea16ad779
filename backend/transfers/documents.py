"""The documents a province asks for with a status change (办理学籍异动所需材料), as
configuration: per province, per kind of change and, for a transfer, per span (within one
authority, within the province, across provinces). A province that set nothing asks for
`DEFAULTS`. The list that applies is the province of the school that asks: the receiving
school's for a transfer, the student's school's for the other kinds.

A parent's application is refused (`documents_missing`, naming each) until a photo of each
document is attached, in one of the parts that document accepts (`Document.parts`); a
registrar's start lists the documents checked on paper at the counter (`documents_checked`).

    required = await required_for(province_of(region_code), ChangeKind.transfer, Span.country)
    check_attached(required, {photo.kind for photo in photos})
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require_over
from backend.accounts.principal import Principal
from backend.accounts.tables import Region
from backend.db import transaction
from backend.errors import BadRequest, NotFound
from backend.records.controls import NotAProvince, check_readable
from backend.records.review_tables import EvidenceKind
from backend.transfers.tables import ChangeDocuments, ChangeKind, Span


class Document(StrEnum):
    residence = "residence"  # 户籍或居住证明
    transfer_application = "transfer_application"  # 转学申请表
    enrolment_proof = "enrolment_proof"  # 原学校在校证明
    id_document = "id_document"  # 学生身份证件
    medical_certificate = "medical_certificate"  # 医疗机构诊断证明


@dataclass(frozen=True, slots=True)
class DocumentSpec:
    document: Document
    label: str
    parts: tuple[EvidenceKind, ...]  # a photo in any of these parts counts


SPECS: dict[Document, DocumentSpec] = {
    spec.document: spec
    for spec in (
        DocumentSpec(
            Document.residence,
            "户籍或居住证明（户口簿，或居住证/居住证明）",
            (EvidenceKind.household_register, EvidenceKind.residence_proof),
        ),
        DocumentSpec(
            Document.transfer_application,
            "转学申请表（监护人签字）",
            (EvidenceKind.transfer_application,),
        ),
        DocumentSpec(
            Document.enrolment_proof, "原学校盖章的在校证明", (EvidenceKind.enrolment_proof,)
        ),
        DocumentSpec(Document.id_document, "学生身份证件", (EvidenceKind.id_scan,)),
        DocumentSpec(
            Document.medical_certificate,
            "医疗机构诊断证明",
            (EvidenceKind.medical_certificate,),
        ),
    )
}
MAX_DOCUMENTS = len(Document)

# What a province that configured nothing asks for. A transfer within the province: the
# guardian's application and proof of where the family lives (common practice for 转学); across
# provinces the simplified 一网通办 set, proof of residence only, the rest being exchanged
# between the two registries. The other kinds: nothing beyond the reason (the school knows the
# child); a province adds e.g. a medical certificate for a suspension.
DEFAULTS: dict[tuple[ChangeKind, Span | None], tuple[Document, ...]] = {
    (ChangeKind.transfer, Span.county): (Document.transfer_application, Document.residence),
    (ChangeKind.transfer, Span.province): (Document.transfer_application, Document.residence),
    (ChangeKind.transfer, Span.country): (Document.residence,),
    **{(kind, None): () for kind in ChangeKind if kind is not ChangeKind.transfer},
}


@dataclass(frozen=True, slots=True)
class DocumentList:
    """What one province asks for with one kind (and span) of change."""

    province_code: str
    kind: ChangeKind
    span: Span | None
    documents: tuple[Document, ...]
    set_by_province: bool

    @property
    def specs(self) -> list[DocumentSpec]:
        return [SPECS[d] for d in self.documents]


class DocumentsMissing(BadRequest):
    code = "documents_missing"
    message = "请补齐省级教育行政部门要求的材料后再提交"


class SpanMismatch(BadRequest):
    code = "span_mismatch"
    message = "转学须按县域内、省内、跨省分别设置材料；其他异动不分范围"


def province_of(region_code: str) -> str:
    return region_code[:2] + "0000"


def _decode(stored: str) -> tuple[Document, ...]:
    known = {d.value for d in Document}
    return tuple(Document(code) for code in stored.split(",") if code in known)


def _keys() -> list[tuple[ChangeKind, Span | None]]:
    return list(DEFAULTS)


async def required_for(province_code: str, kind: ChangeKind, span: Span | None) -> DocumentList:
    """The documents the province asks for with a change of `kind` (a transfer: of `span`)."""
    span = span if kind is ChangeKind.transfer else None
    row = (
        await ChangeDocuments.select(ChangeDocuments.documents)
        .where(
            (ChangeDocuments.province_code == province_code)
            & (ChangeDocuments.kind == kind.value)
            & (ChangeDocuments.span == (span.value if span else ""))
        )
        .first()
    )
    if row is None:
        return DocumentList(province_code, kind, span, DEFAULTS[(kind, span)], False)
    return DocumentList(province_code, kind, span, _decode(row["documents"]), True)


def _refuse(missing: Sequence[DocumentSpec]) -> DocumentsMissing:
    labels = "、".join(spec.label for spec in missing)
    return DocumentsMissing(
        f"还缺少以下材料：{labels}。请拍照上传后再提交",
        field_errors={spec.document.value: f"请上传{spec.label}" for spec in missing},
    )


def check_attached(required: DocumentList, attached: Collection[EvidenceKind]) -> None:
    """A parent's photos: each document asked for in one of its parts (400 otherwise)."""
    missing = [s for s in required.specs if not any(part in attached for part in s.parts)]
    if missing:
        raise _refuse(missing)


def check_checked(required: DocumentList, checked: Collection[Document]) -> None:
    """A registrar's start: each document asked for checked on paper (400 otherwise)."""
    missing = [s for s in required.specs if s.document not in checked]
    if missing:
        raise _refuse(missing)


async def read(principal: Principal, province_code: str) -> list[DocumentList]:
    """Every kind (a transfer: every span) with what the province asks for."""
    if not province_code.endswith("0000"):
        raise NotAProvince()
    check_readable(principal, province_code)
    return [await required_for(province_code, kind, span) for kind, span in _keys()]


async def set_documents(
    principal: Principal,
    actor: Actor,
    province_code: str,
    *,
    kind: ChangeKind,
    span: Span | None,
    documents: Sequence[Document],
) -> DocumentList:
    """Set what the province asks for with one kind (and span) of change; the defaults (in any
    order) remove the province's row. Applications and starts from then on are checked against
    it; those already made are not. Audited with before and after."""
    if not province_code.endswith("0000"):
        raise NotAProvince()
    require_over(principal, Action.set_change_rules, province_code)
    if (kind is ChangeKind.transfer) is (span is None):
        raise SpanMismatch(field_errors={"span": SpanMismatch.message})
    if not await Region.exists().where(Region.code == province_code):
        raise NotFound()
    wanted = tuple(dict.fromkeys(documents))  # in the order given, once each
    default = DEFAULTS[(kind, span)]
    if set(wanted) == set(default):
        wanted = default
    now = datetime.now(UTC)
    span_value = span.value if span else ""
    where = (
        (ChangeDocuments.province_code == province_code)
        & (ChangeDocuments.kind == kind.value)
        & (ChangeDocuments.span == span_value)
    )
    async with transaction():
        before = await required_for(province_code, kind, span)
        if wanted == default:
            await ChangeDocuments.delete().where(where)
        else:  # one statement, so two admins setting it at once both land
            await ChangeDocuments.insert(
                ChangeDocuments(
                    province_code=province_code,
                    kind=kind.value,
                    span=span_value,
                    documents=",".join(d.value for d in wanted),
                    updated_by=principal.account_id,
                    updated_at=now,
                )
            ).on_conflict(
                target=(ChangeDocuments.province_code, ChangeDocuments.kind, ChangeDocuments.span),
                action="DO UPDATE",
                values=[
                    ChangeDocuments.documents,
                    ChangeDocuments.updated_by,
                    ChangeDocuments.updated_at,
                ],
            )
        await audit.record(
            actor,
            "set_change_documents",
            "change_documents",
            f"{province_code}:{kind.value}:{span_value}",
            before={"documents": [d.value for d in before.documents]},
            after={"documents": [d.value for d in wanted]},
        )
    return DocumentList(province_code, kind, span, wanted, wanted != default)
