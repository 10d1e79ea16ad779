"""Request and response bodies of the second factor (docs/api.md, "Signing in with a second
factor")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from backend.accounts.schemas import Password, TokenPair

Ticket = Annotated[
    str,
    msgspec.Meta(
        min_length=20,
        max_length=100,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The ticket from the login's `SecondFactorChallenge`",
    ),
]
# Six digits (authenticator app or SMS), or a recovery code (10 letters and digits, a dash
# or space between the halves allowed).
Code = Annotated[
    str,
    msgspec.Meta(
        min_length=6,
        max_length=16,
        pattern=r"^[A-Za-z0-9 -]+$",
        description="Six digits from the app or SMS, or one recovery code",
        examples=["123456"],
    ),
]


class SecondFactorChallenge(msgspec.Struct):
    """The login's answer for staff who must confirm with a second factor: no tokens yet."""

    ticket: Annotated[
        str, msgspec.Meta(description="Send it with the code; short-lived, one account")
    ]
    step: Annotated[
        Literal["verify", "enrol"],
        msgspec.Meta(
            description="`verify`: send a code (`/auth/second-factor/verify`); `enrol`: the "
            "account has no factor yet and must set one up first (`/auth/second-factor/totp` "
            "or `/auth/second-factor/sms`, then `/auth/second-factor/confirm`)"
        ),
    ]
    methods: Annotated[
        list[Literal["totp", "sms", "recovery"]],
        msgspec.Meta(description="What this step accepts"),
    ]
    expires_in: Annotated[int, msgspec.Meta(description="Seconds the ticket lives")]
    phone: Annotated[str, msgspec.Meta(description="The account's phone, masked (SMS goes there)")]
    second_factor_required: Literal[True] = True


class TicketBody(msgspec.Struct, forbid_unknown_fields=True):
    ticket: Ticket


class TotpEnrolment(msgspec.Struct):
    """A new authenticator secret; it counts once `/auth/second-factor/confirm` gets its
    first right code."""

    secret: Annotated[str, msgspec.Meta(description="Base32, for typing into the app")]
    otpauth_uri: Annotated[str, msgspec.Meta(description="otpauth://totp/…, as the QR holds")]
    qr_svg: Annotated[str, msgspec.Meta(description="The otpauth URI as a QR code (SVG)")]


class SmsSent(msgspec.Struct):
    phone: Annotated[str, msgspec.Meta(description="Where it went, masked")]
    expires_in: Annotated[int, msgspec.Meta(description="Seconds the code lives")]


class VerifyBody(msgspec.Struct, forbid_unknown_fields=True):
    ticket: Ticket
    method: Literal["totp", "sms", "recovery"]
    code: Code


class ConfirmBody(msgspec.Struct, forbid_unknown_fields=True):
    ticket: Ticket
    method: Literal["totp", "sms"]
    code: Code
    # For `totp`: the SMS code too, which proves the phone on record (`sms`: `code` is it).
    sms_code: (
        Annotated[
            str,
            msgspec.Meta(
                pattern=r"^\d{6}$",
                description="With `method: totp`, the code from `/auth/second-factor/sms`",
                examples=["654321"],
            ),
        ]
        | None
    ) = None


class Enrolled(msgspec.Struct):
    """The factor is set: the tokens of this sign-in, and the recovery codes, shown once."""

    tokens: TokenPair
    recovery_codes: Annotated[
        list[str], msgspec.Meta(description="Each signs in once without the phone; shown once")
    ]


class FactorStatus(msgspec.Struct):
    required: bool
    method: Literal["totp", "sms"] | None
    enrolled_at: datetime | None
    recovery_codes_left: int


class RegenerateBody(msgspec.Struct, forbid_unknown_fields=True):
    password: Password


class RecoveryCodeList(msgspec.Struct):
    recovery_codes: list[str]
