"""The answer of `GET /campaigns/{id}/schools-not-started`."""

from __future__ import annotations

from datetime import datetime

import msgspec


class SchoolNotStarted(msgspec.Struct):
    school_id: int
    school_code: str
    name: str
    region_code: str  # its county
    region_name: str
    classes: int
    students: int  # enrolled
    # the window and forms switch that apply to its county (a school that cannot start yet)
    window_starts_at: datetime
    window_ends_at: datetime
    open_now: bool
    forms_open: bool


class SchoolsNotStarted(msgspec.Struct):
    """A page of the schools that have not started, and the region's counts. A school has
    started when it issued (printed) the campaign's forms for at least one class."""

    campaign_id: int
    region_code: str  # the region counted: the one asked for, within the campaign's
    region_name: str
    schools: int  # the region's schools in the caller's scope
    started: int
    items: list[SchoolNotStarted]
    page: int
    page_size: int
    total: int  # schools not started (every page)
