"""The chain of each status change, as data (第十五条, 第二十一条 of the registry rules): who
acts on it, in which order, and within how many working days. Nothing else branches on the
kind of change to decide who acts.

- A transfer (转学): the receiving school starts it, the sending school releases it, then the
  sending school's authority and the receiving school's authority each review it, each within
  10 working days of the step becoming theirs. Within one county both schools answer to the
  same authority, which reviews it once.
- Suspension, return, leaving, skipping or repeating a grade, study abroad: the school's
  registrar enters it, the authority administering the school reviews it.
- Cancellation after death (注销): the same, with 60 working days for each step.

A parent's application opens the same chain, its first step waiting on the school that acts
first; a registrar who starts a change decides the first step at once (`reviews.open_round`).
"""

from __future__ import annotations

from collections.abc import Sequence

from backend.accounts.roles import Role
from backend.records.chains import Seat, StepSpec
from backend.records.review_tables import StepKind
from backend.transfers.tables import ChangeKind, Span

CANCEL_DAYS = 60  # 第二十一条: a deceased student's record is cancelled within 60 working days

START = StepSpec(StepKind.start, Seat.receiving_school, Role.registrar)
RELEASE = StepSpec(StepKind.release, Seat.school, Role.registrar)
REVIEW_OUT = StepSpec(StepKind.review_out, Seat.authority)
REVIEW_IN = StepSpec(StepKind.review_in, Seat.receiving_authority)

ENTER = StepSpec(StepKind.enter, Seat.school, Role.registrar)
REVIEW = StepSpec(StepKind.review, Seat.authority)

TRANSFER: dict[Span, tuple[StepSpec, ...]] = {
    Span.county: (START, RELEASE, REVIEW_OUT),
    Span.province: (START, RELEASE, REVIEW_OUT, REVIEW_IN),
    Span.country: (START, RELEASE, REVIEW_OUT, REVIEW_IN),
}

OTHERS: dict[ChangeKind, tuple[StepSpec, ...]] = {
    ChangeKind.suspend: (ENTER, REVIEW),
    ChangeKind.resume: (ENTER, REVIEW),
    ChangeKind.leave: (ENTER, REVIEW),
    ChangeKind.skip: (ENTER, REVIEW),
    ChangeKind.repeat: (ENTER, REVIEW),
    ChangeKind.abroad: (ENTER, REVIEW),
    ChangeKind.cancel: (
        StepSpec(StepKind.enter, Seat.school, Role.registrar, due_days=CANCEL_DAYS),
        StepSpec(StepKind.review, Seat.authority, due_days=CANCEL_DAYS),
    ),
}


def steps_for(kind: ChangeKind, span: Span | None = None) -> Sequence[StepSpec]:
    """The steps of a change of `kind`; a transfer's by how far it goes."""
    if kind is ChangeKind.transfer:
        if span is None:
            raise ValueError("a transfer's chain depends on its span")
        return TRANSFER[span]
    return OTHERS[kind]
