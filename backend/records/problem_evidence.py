"""Evidence photos of a problem-record action (在校证明, 户口簿, 身份证件, 户籍部门回执):
checked and cleaned by the same rules as the form photos (`parents.photos`: JPEG, PNG, WebP
or HEIC, at most 15 MB each, stored as an upright JPEG of the pixels only), stored under
`evidence/`.

The photo rules are pure image code (no web, no database, no domain): importing them here is
an exception the import-linter's layers contract lists (`pyproject.toml`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from backend.errors import BadRequest, DomainError
from backend.parents.photos import MAX_BYTES, PhotoRejected, clean_photo
from backend.records.change_requests import EvidenceIn
from backend.records.review_tables import EvidenceKind
from backend.storage import Storage

MAX_PHOTOS = 6

KIND_LABEL = {
    EvidenceKind.id_scan: "身份证件（正反面）",
    EvidenceKind.household_register: "户口簿",
    EvidenceKind.enrolment_proof: "学校盖章的在校证明",
    EvidenceKind.registration_receipt: "户籍部门回执",
    EvidenceKind.other: "其他材料",
}


class TooManyPhotos(BadRequest):
    code = "too_many_photos"
    message = f"每次最多上传 {MAX_PHOTOS} 张佐证材料照片"


class PhotoError(DomainError):
    """A rejected photo, with the status the check chose (400, or 413 when too large)."""


@dataclass(frozen=True, slots=True)
class EvidencePhoto:
    kind: EvidenceKind
    data: bytes


def _rejected(code: str, message: str, status: int, kind: EvidenceKind) -> PhotoError:
    error = PhotoError(message, code=code, field_errors={kind.value: message})
    error.status = status
    return error


async def store_photos(
    storage: Storage, student_id: int, photos: Sequence[EvidencePhoto]
) -> list[EvidenceIn]:
    """Check, clean and store each photo; nothing is stored unless every photo passes."""
    if len(photos) > MAX_PHOTOS:
        raise TooManyPhotos(field_errors={"evidence": TooManyPhotos.message})
    cleaned = []
    for photo in photos:
        if len(photo.data) > MAX_BYTES:
            message = f"照片不能超过 {MAX_BYTES // 1024 // 1024} MB，请压缩后再上传"
            raise _rejected("photo_too_large", message, 413, photo.kind)
        try:
            cleaned.append((photo.kind, await asyncio.to_thread(clean_photo, photo.data)))
        except PhotoRejected as exc:
            raise _rejected(exc.code, exc.message, exc.status, photo.kind) from exc
    stored = []
    for kind, clean in cleaned:
        key = f"evidence/{student_id}/{uuid.uuid4().hex}.jpg"
        await storage.put(key, clean.jpeg, "image/jpeg")
        stored.append(EvidenceIn(kind, key, "image/jpeg", len(clean.jpeg)))
    return stored
