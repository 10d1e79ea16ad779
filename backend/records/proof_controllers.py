"""HTTP for the proof of children without a resident ID card: what a record needs and has,
the registrar's upload (evidence photos: same rules, storage and masks), and the counts of
records still missing it per school and region. The photos are read like every evidence
photo (`GET /evidence/{evidence_id}/photo`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, MultipartBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED

from backend.accounts.permissions import Action
from backend.accounts.scope_rules import region_contains
from backend.accounts.tables import School
from backend.deps import ActorDep, PrincipalDep, StorageDep
from backend.http import allowed
from backend.openapi import BY_ID, QUERY, SIGNED_IN, STAFF, UPLOAD, errors
from backend.pages import DEFAULT_PAGE_SIZE, Page, PageNumber, PageSize, window
from backend.records import proofs
from backend.records.evidence import (
    MAX_REQUEST_BYTES,
    EvidencePhoto,
    EvidenceTooLarge,
    store_photos,
)
from backend.records.review_tables import EvidenceKind

PHOTO_ERRORS = (
    "photo_empty photo_unsupported photo_damaged photo_truncated photo_too_many_pixels "
    "too_many_photos"
)
RegionFilter = Annotated[str | None, QueryParameter(pattern=r"^\d{6}$")]


class ProofItem(msgspec.Struct):
    kind: EvidenceKind
    label: str


class ProofPhoto(msgspec.Struct):
    id: int  # GET /evidence/{id}/photo
    kind: EvidenceKind
    created_at: datetime


class ProofRead(msgspec.Struct):
    student_id: int
    needed: list[ProofItem]  # none: a resident ID card with its number, a G registry number
    missing: list[ProofItem]
    photos: list[ProofPhoto]


@dataclass
class ProofUpload:
    """Photos in parts named by their kind (JPEG, PNG, WebP or HEIC, at most 15 MB each, at
    most 6): `id_scan`, the ID document of another kind than the resident ID card;
    `enrolment_proof`, the school's proof that a child without an ID number studies here."""

    id_scan: list[UploadFile] | None = None
    enrolment_proof: list[UploadFile] | None = None


class ProofCountRead(msgspec.Struct):
    needing: int  # enrolled records that need proof
    missing: int  # of them, those still missing some


class SchoolProofCountRead(ProofCountRead):
    school_id: int
    school_name: str
    region_code: str


def _items(kinds: list[EvidenceKind]) -> list[ProofItem]:
    return [ProofItem(kind, proofs.PROOF_LABEL[kind]) for kind in kinds]


def _read(state: proofs.ProofState) -> ProofRead:
    return ProofRead(
        student_id=state.student_id,
        needed=_items(state.needed),
        missing=_items(state.missing),
        photos=[
            ProofPhoto(e["id"], EvidenceKind(e["kind"]), e["created_at"]) for e in state.evidence
        ],
    )


class StudentProofController(Controller):
    path = "/students/{student_id:int}/id-proof"
    tags = ["records"]
    guards = [allowed(Action.use_staff_api)]

    @get(
        "/",
        summary="Read a record's ID proof",
        operation_id="getIdProof",
        responses=errors(SIGNED_IN, STAFF, BY_ID),
    )
    async def read(
        self, student_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> ProofRead:
        """What proof the record of a child without a resident ID card needs (the document
        of another ID type; the school's proof of study for a child without an ID number or
        on a J registry number), the photos uploaded and what is still missing.

        **Who may call**: staff whose scope holds the student.

        **Errors**: `not_found` (404) outside the caller's scope (audited)."""
        return _read(await proofs.proof_of(principal, actor, student_id))

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Upload a record's ID proof",
        operation_id="uploadIdProof",
        request_max_body_size=MAX_REQUEST_BYTES,
        opt={"upload_noun": "证明材料照片", "too_large": EvidenceTooLarge},
        responses=errors(
            SIGNED_IN,
            STAFF,
            UPLOAD,
            BY_ID,
            {
                400: f"proof_not_needed proof_kind_not_needed proof_required {PHOTO_ERRORS}",
                403: "proof_registrar_only",
                413: "photo_too_large evidence_too_large",
            },
        ),
    )
    async def upload(
        self,
        student_id: FromPath[int],
        data: MultipartBody[ProofUpload],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
    ) -> ProofRead:
        """The registrar uploads the proof a record needs, as `multipart/form-data` with
        photos in parts named by their kind (`id_scan`, `enrolment_proof`), checked and
        cleaned like every evidence photo and served only inside the student's scope.
        Audited.

        **Who may call**: the school's registrar.

        **Errors**: `proof_not_needed` (400) for a record with a resident ID card and its
        number; `proof_kind_not_needed` (400) for a kind the record does not need;
        `proof_required` (400) without a photo; `proof_registrar_only` (403); `not_found`
        (404) outside the caller's scope (audited); photo errors as for evidence photos
        (400; 413 `photo_too_large`, `evidence_too_large`)."""
        photos = [
            EvidencePhoto(kind, await part.read())
            for kind in (EvidenceKind.id_scan, EvidenceKind.enrolment_proof)
            for part in getattr(data, kind.value) or []
        ]
        await proofs.check_upload(principal, actor, student_id, [p.kind for p in photos])
        stored = await store_photos(storage, student_id, photos)
        return _read(await proofs.upload(principal, actor, student_id, stored))


class ProofCountController(Controller):
    path = "/id-proof-counts"
    tags = ["records"]
    guards = [allowed(Action.use_staff_api)]

    @get(
        "/",
        summary="Count records missing ID proof",
        operation_id="countIdProof",
        responses=errors(SIGNED_IN, STAFF, QUERY),
    )
    async def total(
        self, principal: PrincipalDep, region_code: RegionFilter = None
    ) -> ProofCountRead:
        """In the caller's scope (or a region inside it): the enrolled records that need
        proof (no resident ID card, no ID number, or a J registry number) and those still
        missing some.

        **Who may call**: staff; each counts its own scope.

        **Errors**: `validation_error` (400) for a malformed `region_code`."""
        found = await _counts(principal, region_code)
        return ProofCountRead(
            needing=sum(c.needing for c, _ in found.values()),
            missing=sum(c.missing for c, _ in found.values()),
        )

    @get(
        "/schools",
        summary="List ID-proof counts by school",
        operation_id="listIdProofCountsBySchool",
        responses=errors(SIGNED_IN, STAFF, QUERY),
    )
    async def by_school(
        self,
        principal: PrincipalDep,
        region_code: RegionFilter = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[SchoolProofCountRead]:
        """Each school in the caller's scope (or a region inside it) with records that need
        proof, those missing the most first.

        **Who may call**: staff; each sees its own scope.

        **Errors**: `validation_error` (400) for a malformed `region_code`."""
        found = await _counts(principal, region_code)
        w = window(page, page_size)
        order = sorted(found, key=lambda school: (-found[school][0].missing, school))
        items = [
            SchoolProofCountRead(
                needing=found[school][0].needing,
                missing=found[school][0].missing,
                school_id=school,
                school_name=found[school][1]["name"],
                region_code=found[school][1]["region_code"],
            )
            for school in order[w.offset : w.offset + w.size]
        ]
        return w.page(items, len(order))


async def _counts(
    principal: Any, region_code: str | None
) -> dict[int, tuple[proofs.ProofCount, dict[str, Any]]]:
    counts = await proofs.counts_by_school(principal)
    schools = {
        row["id"]: row
        for row in await School.select(School.id, School.name, School.region_code).where(
            School.id.is_in(list(counts) or [0])
        )
    }
    return {
        school: (count, schools[school])
        for school, count in counts.items()
        if region_code is None or region_contains(region_code, schools[school]["region_code"])
    }


ROUTES: list[Any] = [StudentProofController, ProofCountController]
