"""Bodies of staff administration beyond creating accounts: a password reset by an admin."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class ResetDelivery(StrEnum):
    """How the temporary password reaches its owner: shown once to the admin, who hands it
    over in person, or sent by SMS to the account's own phone (the admin never sees it)."""

    show = "show"
    sms = "sms"


class PasswordResetWrite(msgspec.Struct, forbid_unknown_fields=True):
    delivery: ResetDelivery = ResetDelivery.show


class PasswordResetRead(msgspec.Struct):
    account_id: int
    delivery: ResetDelivery
    # Only with `delivery: show`, in this one answer; never stored, logged or audited.
    temporary_password: str | None
    sessions_ended: int  # the account's sessions signed out by the reset
