"""How a status change reads in "what waits on me" (`records.queues.summarize`), beside the
corrections: its kind, where a transfer goes, the applicant's reason and documents, its
round; in the page's one statement."""

from __future__ import annotations

from typing import Any

from backend.masking import mask_text
from backend.records.queue_schemas import SubjectSummary
from backend.records.queues import Summary, evidence_kinds, evidence_list, summarize
from backend.records.review_tables import SubjectKind
from backend.transfers.effects import KIND_LABEL
from backend.transfers.tables import ChangeKind


def change_summary(row: dict[str, Any]) -> SubjectSummary | None:
    if row["stc_kind"] is None:
        return None
    kind = ChangeKind(row["stc_kind"])
    title = KIND_LABEL[kind]
    if kind is ChangeKind.transfer and row["stc_to_school"]:
        title = f"{title}：{row['stc_from_school']} → {row['stc_to_school']}"
    kinds = evidence_kinds(row["stc_evidence"])
    return SubjectSummary(
        title=title,
        field=None,
        source=None,
        reason=mask_text(row["stc_reason"] or ""),
        has_document=bool(kinds),
        evidence=kinds,
        round=int(row["stc_round"]),
    )


summarize(
    SubjectKind.status_change,
    Summary(
        join="LEFT JOIN status_change stc ON p.subject_kind = 'status_change' "
        "AND stc.id = p.subject_id",
        columns=lambda: (
            "stc.kind AS stc_kind, stc.reason AS stc_reason, stc.round AS stc_round, "
            "(SELECT name FROM school WHERE id = stc.from_school) AS stc_from_school, "
            "(SELECT name FROM school WHERE id = stc.to_school) AS stc_to_school, "
            f"(SELECT {evidence_list()} FROM evidence e "
            "WHERE e.subject_kind = 'status_change' AND e.subject_id = stc.id) AS stc_evidence"
        ),
        read=change_summary,
    ),
)
