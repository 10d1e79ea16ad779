"""What the province's status-change rules (documents asked for, the senior-high repeat
rule) and the parents' school directory take and answer."""

from __future__ import annotations

from typing import Annotated

import msgspec

from backend.accounts.roles import Administration
from backend.accounts.tables import SchoolKind
from backend.records.review_tables import EvidenceKind
from backend.transfers import documents
from backend.transfers.documents import MAX_DOCUMENTS, Document
from backend.transfers.effects import KIND_LABEL
from backend.transfers.reads import SPAN_LABEL
from backend.transfers.repeats import SENIOR_RULE_LABEL, ProvinceRepeatRule, SeniorRule
from backend.transfers.tables import ChangeKind, Span


class DocumentRead(msgspec.Struct):
    code: Document
    label: Annotated[str, msgspec.Meta(examples=["户籍或居住证明（户口簿，或居住证/居住证明）"])]
    # the multipart parts a photo of it may be sent in (any one of them will do)
    parts: list[EvidenceKind]


class DocumentListRead(msgspec.Struct):
    province_code: str
    kind: ChangeKind
    kind_label: str
    span: Span | None  # a transfer's: county, province, country
    span_label: str | None
    documents: list[DocumentRead]
    set_by_province: bool  # False: the defaults (docs/transfers.md)


class DocumentListWrite(msgspec.Struct, forbid_unknown_fields=True):
    kind: ChangeKind
    documents: Annotated[list[Document], msgspec.Meta(max_length=MAX_DOCUMENTS)]
    span: Span | None = None  # required for a transfer, absent for the other kinds


class RepeatRuleRead(msgspec.Struct):
    province_code: str
    senior_high: SeniorRule
    senior_high_label: str
    set_by_province: bool


class RepeatRuleWrite(msgspec.Struct, forbid_unknown_fields=True):
    senior_high: SeniorRule


class DirectoryEntryRead(msgspec.Struct):
    school_id: int
    name: str
    region_code: str
    region_name: Annotated[str, msgspec.Meta(examples=["浙江省 杭州市 西湖区"])]
    kind: SchoolKind
    kind_label: Annotated[str, msgspec.Meta(examples=["九年一贯制学校"])]
    administered_by: Administration
    administered_by_label: Annotated[str, msgspec.Meta(examples=["县（区）属"])]


def document_list(found: documents.DocumentList) -> DocumentListRead:
    return DocumentListRead(
        province_code=found.province_code,
        kind=found.kind,
        kind_label=KIND_LABEL[found.kind],
        span=found.span,
        span_label=SPAN_LABEL[found.span] if found.span else None,
        documents=[DocumentRead(s.document, s.label, list(s.parts)) for s in found.specs],
        set_by_province=found.set_by_province,
    )


def repeat_rule(found: ProvinceRepeatRule) -> RepeatRuleRead:
    return RepeatRuleRead(
        province_code=found.province_code,
        senior_high=found.senior_high,
        senior_high_label=SENIOR_RULE_LABEL[found.senior_high],
        set_by_province=found.set_by_province,
    )
