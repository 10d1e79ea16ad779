"""Quiet hours: a non-urgent push waits until they end; the inbox gets it at once.

Times are China time (the country has one time zone and no daylight saving); the default
window is 21:00–07:30 and a user may set their own (`Preference`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from backend.workdays import CHINA


@dataclass(frozen=True)
class QuietHours:
    start: time = time(21, 0)
    end: time = time(7, 30)

    def contains(self, local: time) -> bool:
        if self.start <= self.end:  # a window inside one day, e.g. 12:00–14:00
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # across midnight

    def push_at(self, now: datetime) -> datetime:
        """When a non-urgent push made at `now` may go: `now`, or the end of the quiet
        window `now` falls in (UTC)."""
        local = now.astimezone(CHINA)
        if not self.contains(local.time()):
            return now
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(UTC)


DEFAULT_QUIET = QuietHours()
