"""ID numbers (GB 11643, via python-stdnum) and registry numbers (masks: backend.masking)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from stdnum.cn import ric
from stdnum.exceptions import ValidationError

# The masks live in backend.masking (one rule); these names stay importable from here.
from backend.masking import mask_id_number, mask_phone, mask_registry_number

__all__ = [
    "PROBLEM_LABEL",
    "IdFacts",
    "ProblemKind",
    "id_problems",
    "make_resident_id",
    "mask_id_number",
    "mask_phone",
    "mask_registry_number",
    "normalise_id_number",
    "registry_number_for",
    "resident_id_facts",
]


class ProblemKind(StrEnum):
    id_invalid = "id_invalid"  # fails the checksum, length, format, birth date or region
    id_birth_mismatch = "id_birth_mismatch"  # the birth date inside differs from the record's
    id_sex_mismatch = "id_sex_mismatch"  # the sex inside differs from the record's
    duplicate_id = "duplicate_id"  # the same ID number is held at another school
    # another record of the same school holds the same ID number (a child entered twice, or
    # a typing error): the school's own to resolve, no arbitration
    duplicate_id_in_school = "duplicate_id_in_school"


PROBLEM_LABEL = {
    ProblemKind.id_invalid: "身份证件号错误",
    ProblemKind.id_birth_mismatch: "身份证件号与出生日期不符",
    ProblemKind.id_sex_mismatch: "身份证件号与性别不符",
    ProblemKind.duplicate_id: "身份证件号重复",
    ProblemKind.duplicate_id_in_school: "本校身份证件号重复",
}


def normalise_id_number(value: str) -> str:
    """Full-width digits, spaces and a lower-case x, as people type them, made canonical."""
    value = value.translate({0xFF10 + i: ord("0") + i for i in range(10)})
    value = value.replace("ｘ", "X").replace("Ｘ", "X")
    return re.sub(r"[\s-]", "", value).upper()


@dataclass(frozen=True, slots=True)
class IdFacts:
    valid: bool
    birth_date: date | None = None
    sex: str | None = None  # catalog code: "1" male, "2" female
    reason: str = ""


def resident_id_facts(number: str) -> IdFacts:
    try:
        ric.validate(number)
    except ValidationError as exc:
        reasons = {
            "InvalidChecksum": "校验位错误",
            "InvalidLength": "位数不是 18 位",
            "InvalidFormat": "含有非法字符",
            "InvalidComponent": "出生日期或地区码无效",
        }
        return IdFacts(False, reason=reasons.get(type(exc).__name__, "号码无效"))
    sex = "1" if int(number[16]) % 2 == 1 else "2"
    return IdFacts(True, ric.get_birth_date(number), sex)


def id_problems(
    id_type: str | None, number: str | None, birth_date: str | None, sex: str | None
) -> list[tuple[ProblemKind, str]]:
    """What is wrong with a record's own ID number (duplicates are found elsewhere)."""
    if id_type != "1" or not number:
        return []
    facts = resident_id_facts(number)
    if not facts.valid:
        return [(ProblemKind.id_invalid, facts.reason)]
    found: list[tuple[ProblemKind, str]] = []
    if birth_date and facts.birth_date and facts.birth_date.isoformat() != birth_date:
        found.append(
            (
                ProblemKind.id_birth_mismatch,
                f"证件号出生日期 {facts.birth_date.isoformat()}，记录为 {birth_date}",
            )
        )
    if sex and facts.sex and facts.sex != sex:
        found.append((ProblemKind.id_sex_mismatch, "证件号性别位与记录性别不一致"))
    return found


def registry_number_for(
    id_type: str | None, id_number: str | None, school_code: str, name: str, birth_date: str | None
) -> str:
    """G + ID number for a child with a resident ID; otherwise J + a number derived from the
    school, name and birth date, so importing the same child again finds the same record."""
    if id_type == "1" and id_number:
        return "G" + id_number
    digest = hashlib.sha256(f"{school_code}|{name}|{birth_date}".encode()).hexdigest()
    return (
        "J"
        + school_code[:6]
        + (birth_date or "").replace("-", "")
        + str(int(digest[:8], 16) % 10_000).zfill(4)
    )


def make_resident_id(region_code: str, born: date, sequence: int, sex: str) -> str:
    """A valid ID number (for demo data and tests): sequence 0–99, sex '1' or '2'."""
    order = (sequence % 100) * 2 + (1 if sex == "1" else 2)  # odd for male, even for female
    body = f"{region_code}{born:%Y%m%d}{order:03d}"
    return body + ric.calc_check_digit(body + "0")
