"""A transfer or another status change in the approvers' queue ("what waits on me",
`GET /review-steps`): what the approver decides on, joined inside the queue's one statement
(`records.queues.summarize`): the kind, from which school to which, how far it goes, and the
reason given (masked as all free text is: `backend.masking.mask_text`)."""

from __future__ import annotations

from typing import Any

from backend.masking import mask_text
from backend.records import queues
from backend.records.queue_schemas import ChangeSummary, QueuedChangeKind, SubjectSummary
from backend.records.review_tables import SubjectKind
from backend.transfers.bulletin_schemas import KIND_LABEL, SPAN_LABEL
from backend.transfers.tables import ChangeKind, Span

_KIND = SubjectKind.status_change.value


def summary(row: dict[str, Any]) -> SubjectSummary | None:
    if row["chg_kind"] is None:
        return None
    kind = ChangeKind(row["chg_kind"])
    span = Span(row["chg_span"]) if row["chg_span"] else None
    from_school, to_school = row["chg_from_school"], row["chg_to_school"]
    if kind is ChangeKind.transfer:
        title = f"转学：{from_school} → {to_school}"
        if span is not None:
            title += f"（{SPAN_LABEL[span]}）"
    else:
        title = f"{KIND_LABEL[kind]}：{from_school}"
    evidence = queues.evidence_kinds(row["chg_evidence"])
    return SubjectSummary(
        title=title,
        field=None,
        source=None,
        reason=mask_text(row["chg_reason"] or ""),
        has_document=bool(evidence),  # the documents the application came with
        evidence=evidence,
        round=int(row["chg_round"]),
        change=ChangeSummary(
            kind=QueuedChangeKind(kind.value),
            kind_label=KIND_LABEL[kind],
            from_school_name=from_school,
            to_school_name=to_school,
            span=span.value if span is not None else None,
            span_label=SPAN_LABEL[span] if span is not None else None,
        ),
    )


queues.summarize(
    SubjectKind.status_change,
    queues.Summary(
        join=f"LEFT JOIN status_change chg ON p.subject_kind = '{_KIND}' "
        "AND chg.id = p.subject_id "
        "LEFT JOIN school chg_f ON chg_f.id = chg.from_school "
        "LEFT JOIN school chg_t ON chg_t.id = chg.to_school",
        columns=lambda: (
            "chg.kind AS chg_kind, chg.span AS chg_span, chg.reason AS chg_reason, "
            "chg.round AS chg_round, chg_f.name AS chg_from_school, "
            "chg_t.name AS chg_to_school, "
            f"(SELECT {queues.evidence_list()} FROM evidence e "
            f"WHERE e.subject_kind = '{_KIND}' AND e.subject_id = chg.id) AS chg_evidence"
        ),
        read=summary,
    ),
)
