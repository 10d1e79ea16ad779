"""Evidence photos of a change request or a problem-record action (the ID document, the
household register, the school's proof of enrolment, the registration office's receipt): checked
and cleaned by the same rules as the form photos (`parents.photos`: JPEG, PNG, WebP or HEIC,
at most 15 MB each, stored as an upright JPEG of the pixels only), stored under `evidence/`,
and served only inside the student's scope, every staff read audited.

The photo rules are pure image code (no web, no database, no domain): importing them here is
the one exception the import-linter's layers contract allows (`pyproject.toml`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.principal import Principal
from backend.accounts.roles import STAFF_ROLES
from backend.accounts.scope import get_scoped
from backend.errors import BadRequest, DomainError, PayloadTooLarge
from backend.parents.photos import MAX_BYTES, PhotoRejected, clean_photo, strip_metadata
from backend.records.change_requests import EvidenceIn
from backend.records.review_tables import Evidence, EvidenceKind
from backend.storage import Storage, read_current

# At most this many photos with one request (or one amendment), and this many bytes in all.
MAX_PHOTOS = 6
MAX_REQUEST_BYTES = 25 * 1024 * 1024  # the app's own limit on any request

KIND_LABEL = {
    EvidenceKind.id_scan: "身份证件（正反面）",
    EvidenceKind.household_register: "户口簿",
    EvidenceKind.enrolment_proof: "学校盖章的在校证明",
    EvidenceKind.registration_receipt: "户籍部门回执",
    EvidenceKind.residence_proof: "居住证或居住证明",
    EvidenceKind.transfer_application: "转学申请表",
    EvidenceKind.medical_certificate: "医疗机构诊断证明",
    EvidenceKind.other: "其他材料",
}


class EvidenceTooLarge(PayloadTooLarge):
    """Refused before it is read (the request's size limit), in its own words."""

    code = "evidence_too_large"
    message = f"佐证材料照片合计不能超过 {MAX_REQUEST_BYTES // 1024 // 1024} MB，请压缩后再上传"


class TooManyPhotos(BadRequest):
    code = "too_many_photos"
    message = f"每次最多上传 {MAX_PHOTOS} 张佐证材料照片"


class PhotoError(DomainError):
    """A rejected photo, with the status the check chose (400, or 413 when too large)."""


@dataclass(frozen=True, slots=True)
class EvidencePhoto:
    kind: EvidenceKind
    data: bytes


async def store_photos(
    storage: Storage, student_id: int, photos: Sequence[EvidencePhoto]
) -> list[EvidenceIn]:
    """Check, clean and store each photo; what `create_request` attaches. Nothing is stored
    unless every photo passes."""
    if len(photos) > MAX_PHOTOS:
        raise TooManyPhotos(field_errors={"evidence": TooManyPhotos.message})
    cleaned = []
    for photo in photos:
        if len(photo.data) > MAX_BYTES:
            error = PhotoError(
                f"照片不能超过 {MAX_BYTES // 1024 // 1024} MB，请压缩后再上传",
                code="photo_too_large",
            )
            error.status = 413
            raise error
        try:
            cleaned.append((photo.kind, await asyncio.to_thread(clean_photo, photo.data)))
        except PhotoRejected as exc:
            error = PhotoError(
                exc.message, code=exc.code, field_errors={photo.kind.value: exc.message}
            )
            error.status = exc.status
            raise error from exc
    stored = []
    for kind, clean in cleaned:
        key = f"evidence/{student_id}/{uuid.uuid4().hex}.jpg"
        await storage.put(key, clean.jpeg, "image/jpeg")
        stored.append(EvidenceIn(kind, key, "image/jpeg", len(clean.jpeg)))
    return stored


async def evidence_bytes(
    principal: Principal, actor: Actor, storage: Storage, evidence_id: int
) -> bytes:
    """One evidence photo in the caller's scope (404 otherwise, audited); staff reads are
    audited (an ID document's photo shows the number in full)."""
    row = await get_scoped(
        actor, principal.scope, Evidence, Evidence.id == evidence_id, "evidence", evidence_id
    )
    if principal.role in STAFF_ROLES:
        await audit.record(actor, "read", "evidence", evidence_id)
    return strip_metadata(await read_current(storage, row["storage_key"]))
