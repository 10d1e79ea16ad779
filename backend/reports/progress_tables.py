"""Tables of campaign progress: counts kept per (campaign, class) and per (campaign, school), and
events per (campaign, school, China day), recomputed school by school from the domains' own rows
(`reports.progress`). Nothing here is a source of truth: any row can be thrown away and counted
again from the records. See docs/progress.md for what each count means."""

from __future__ import annotations

from piccolo.columns import ForeignKey, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from backend.accounts.scope_rules import ScopedColumns, declare_scoped
from backend.accounts.tables import School, SchoolClass
from backend.records.tables import Campaign

# The events of a day, for the series.
DAY_COUNTS = (
    "forms_issued",
    "paper_returned",
    "photos_uploaded",
    "photos_matches",
    "corrections_entered",
    "problems_resolved",
)


class _Counts(Table):
    """The columns of `COUNTS`, once, for the three tables that hold them (Piccolo copies a
    base class's columns into each table; this class is no table of its own)."""

    students = Integer(default=0)
    forms_issued = Integer(default=0)
    paper_returned = Integer(default=0)
    photos_uploaded = Integer(default=0)
    photos_matches = Integer(default=0)
    photos_differs = Integer(default=0)
    photos_corrections_written = Integer(default=0)
    photos_unsigned = Integer(default=0)
    photos_undated = Integer(default=0)
    photos_retake = Integer(default=0)
    photos_not_this_form = Integer(default=0)
    photos_record_changed = Integer(default=0)
    photos_form_superseded = Integer(default=0)
    photos_check_failed = Integer(default=0)
    photos_checking = Integer(default=0)
    pending_check = Integer(default=0)
    pending_enter = Integer(default=0)
    pending_approve = Integer(default=0)
    pending_review = Integer(default=0)
    pending_arbitrate = Integer(default=0)
    steps_overdue = Integer(default=0)
    corrections_entered = Integer(default=0)
    problems_open = Integer(default=0)


# The counts of a class, a school and any region (sums of the schools'), in this order.
COUNTS = tuple(c._meta.name for c in _Counts._meta.columns if not c._meta.primary_key)


class ProgressClass(_Counts, tablename="progress_class"):
    """A class's counts in a campaign, as of `refreshed_at`. One row per (campaign,
    school_class): see the migration."""

    id = Serial(primary_key=True)
    campaign = ForeignKey(references=Campaign, on_delete=OnDelete.cascade)
    school = ForeignKey(references=School, index=True, on_delete=OnDelete.cascade)
    school_class = ForeignKey(references=SchoolClass, on_delete=OnDelete.cascade)
    region_code = Varchar(length=6)
    refreshed_at = Timestamptz()


# Counts, not records: whoever may see the class (or the school, the region) sees its counts.
declare_scoped(
    ProgressClass,
    ScopedColumns(
        region=ProgressClass.region_code,
        school=ProgressClass.school,
        school_class=ProgressClass.school_class,
        personal=False,
    ),
)


class ProgressSchool(_Counts, tablename="progress_school"):
    """A school's counts in a campaign (the sum of its classes'), as of `refreshed_at`: what
    a region's totals and its children are summed from. One row per (campaign, school)."""

    id = Serial(primary_key=True)
    campaign = ForeignKey(references=Campaign, on_delete=OnDelete.cascade)
    school = ForeignKey(references=School, on_delete=OnDelete.cascade)
    region_code = Varchar(length=6)
    refreshed_at = Timestamptz()


declare_scoped(
    ProgressSchool,
    ScopedColumns(region=ProgressSchool.region_code, school=ProgressSchool.school, personal=False),
)


class ProgressCounty(_Counts, tablename="progress_county"):
    """A county's counts in a campaign (the sum of its schools'), so a province or city sums
    a hundred rows, not thousands. One row per (campaign, region_code)."""

    id = Serial(primary_key=True)
    campaign = ForeignKey(references=Campaign, on_delete=OnDelete.cascade)
    region_code = Varchar(length=6)  # the county
    refreshed_at = Timestamptz()


declare_scoped(ProgressCounty, ScopedColumns(region=ProgressCounty.region_code, personal=False))


class ProgressDay(Table, tablename="progress_day"):
    """What happened in a school on one China day of a campaign (forms issued, paper returned,
    first photos, photos that matched, corrections entered, problem records resolved): the
    series' points. One row per (campaign, school, day); a day with nothing has no row."""

    id = Serial(primary_key=True)
    campaign = ForeignKey(references=Campaign, on_delete=OnDelete.cascade)
    school = ForeignKey(references=School, on_delete=OnDelete.cascade)
    region_code = Varchar(length=6)
    day = Varchar(length=10)  # YYYY-MM-DD, China time
    forms_issued = Integer(default=0)
    paper_returned = Integer(default=0)
    photos_uploaded = Integer(default=0)
    photos_matches = Integer(default=0)
    corrections_entered = Integer(default=0)
    problems_resolved = Integer(default=0)


declare_scoped(
    ProgressDay,
    ScopedColumns(region=ProgressDay.region_code, school=ProgressDay.school, personal=False),
)


class ProgressCampaign(Table, tablename="progress_campaign"):
    """A campaign whose schools have all been counted once (`reports.progress.refresh` marks
    every school of its region the first time it sees the campaign)."""

    id = Serial(primary_key=True)
    campaign = ForeignKey(references=Campaign, unique=True, on_delete=OnDelete.cascade)
    seeded_at = Timestamptz()
