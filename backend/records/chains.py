"""The review chains of notice 001 as data: which steps a change goes through, who decides
each, and where they sit. The chain of a field comes from the field catalog
(`catalog.Field.chain`); nothing else branches on which field is changed.

- Ordinary fields (学籍数据维护): the registrar enters, a school leader approves (in bulk
  allowed).
- Key fields (关键数据变更): the registrar enters, the education authority administering the
  school reviews each one (the county; the city or province for schools it runs directly).
- A parent's own request is checked first by the class teacher.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from backend.accounts.roles import AUTHORITY_ROLE, Administration, Role
from backend.records.catalog import Chain
from backend.records.review_tables import RequestSource, StepKind
from backend.workdays import STEP_DAYS


class Seat(StrEnum):
    """Where whoever decides a step sits, relative to the student."""

    school_class = "class"  # the student's class: its teacher
    school = "school"  # the student's school: its registrar or leader
    authority = "authority"  # the education authority administering the school
    national = "national"  # a national-level account (arbitration)
    # A transfer's other side (`Place.receiving`): the school the student goes to, and the
    # authority administering it
    receiving_school = "receiving_school"
    receiving_authority = "receiving_authority"


@dataclass(frozen=True, slots=True)
class StepSpec:
    kind: StepKind
    seat: Seat
    role: Role | None = None  # None: the authority's role (`AUTHORITY_ROLE`)
    in_bulk: bool = False  # may be approved many at a time
    due_days: int = STEP_DAYS  # working days to decide it once it is current

    def role_for(self, administration: Administration) -> Role:
        return self.role if self.role is not None else AUTHORITY_ROLE[administration]


CHECK = StepSpec(StepKind.check, Seat.school_class, Role.teacher)
ENTER = StepSpec(StepKind.enter, Seat.school, Role.registrar)

CHAINS: dict[Chain, tuple[StepSpec, ...]] = {
    Chain.ordinary: (ENTER, StepSpec(StepKind.approve, Seat.school, Role.school_leader, True)),
    Chain.key_data: (ENTER, StepSpec(StepKind.review, Seat.authority)),
}

# A key-data change cannot be reviewed without the ID document (appendix 2).
EVIDENCE_REQUIRED: dict[Chain, bool] = {Chain.ordinary: False, Chain.key_data: True}


def steps_for(chain: Chain, source: RequestSource) -> Sequence[StepSpec]:
    """The steps of a change request: a parent's is checked by the class teacher first."""
    steps = CHAINS[chain]
    return (CHECK, *steps) if source is RequestSource.parent else steps
