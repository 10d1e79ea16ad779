"""The archive's ledger: one row per photo or evidence object moved to the archive
(`parents.archive`), written in the same transaction as the row's new storage key and its
audit row. Not scoped: nobody reads it through the API; it is the operators' record of what
was moved where, with the hash of the bytes moved."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import ForeignKey, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from backend.records.tables import Campaign


class ArchivedKind(StrEnum):
    """What was archived, by the table its row lives in (and the audit row's entity)."""

    upload = "upload"  # a photographed confirmation form (`upload`)
    evidence = "evidence"  # an evidence photo of a change request, problem action or proof


class ArchivedObject(Table, tablename="archived_object"):
    id = Serial(primary_key=True)
    object_ref = Varchar(length=40, unique=True)  # "{kind}:{object id}": archived once
    kind = Varchar(length=12)  # ArchivedKind
    object_id = Integer()
    # The settled campaign that let it go (an upload's own; evidence: one covering its region)
    campaign = ForeignKey(references=Campaign, on_delete=OnDelete.restrict)
    hot_key = Varchar(length=200)
    archive_key = Varchar(length=200)
    sha256 = Varchar(length=64)  # of the bytes read from the hot key and found in the copy
    size_bytes = Integer()
    storage_class = Varchar(length=32)  # asked of S3; the local disk has none ("")
    archived_at = Timestamptz()
    # When the hot copy was removed; null: still to remove (a run stopped in between)
    hot_removed_at = Timestamptz(null=True, default=None, index=True)


def ref_of(kind: ArchivedKind, object_id: int) -> str:
    return f"{kind.value}:{object_id}"
