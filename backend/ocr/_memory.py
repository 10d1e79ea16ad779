"""Layouts of other systems' forms, learned once: the first photo of a layout read well
leaves its map (which cell is which field's label, value and correction, where the
signature and date go) under a fingerprint of its ruling lines; the next photo of the same
layout is matched by its lines, two of its labels are read to make sure, and the label
column is not read again."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ._layout import Box

CellRef = tuple[int, int]  # row, index in the row


@dataclass(frozen=True, slots=True)
class FieldMap:
    label: CellRef
    value: CellRef
    correction: CellRef | None


@dataclass(frozen=True, slots=True)
class LearnedLayout:
    fingerprint: str
    fields: dict[str, FieldMap]
    # The signature and date boxes: a cell, or a box relative to the table's top-left
    # corner (canvas pixels) for blanks below the table.
    signature: CellRef | Box | None
    date: CellRef | Box | None
    labels: dict[str, str]  # code → the label as first read (for the record)
    title: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LearnedLayout:
        def ref(v: Any) -> Any:
            return None if v is None else tuple(v)

        return cls(
            fingerprint=data["fingerprint"],
            fields={
                code: FieldMap(tuple(m["label"]), tuple(m["value"]), ref(m["correction"]))  # type: ignore[arg-type]
                for code, m in data["fields"].items()
            },
            signature=ref(data["signature"]),
            date=ref(data["date"]),
            labels=dict(data["labels"]),
            title=data.get("title", ""),
        )


def fingerprint(rows: tuple[tuple[Box, ...], ...], table: Box) -> str:
    """The table's lines: cells per row, and where the header row's cells start (in 2 %
    steps of the table's width). Photos of one layout agree; layouts rarely do, and two
    labels are read to be sure."""
    x0, _, x1, _ = table
    width = max(1, x1 - x0)
    header = tuple(round(50 * (c[0] - x0) / width) for c in rows[0]) if rows else ()
    spec = repr((tuple(len(r) for r in rows), header))
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


class LayoutMemory:
    """Learned layouts by fingerprint, in memory, optionally kept in a JSON file."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._path = Path(path) if path else None
        self._lock = threading.Lock()
        self._layouts: dict[str, LearnedLayout] = {}
        if self._path and self._path.is_file():
            for item in json.loads(self._path.read_text(encoding="utf-8")):
                learned = LearnedLayout.from_json(item)
                self._layouts[learned.fingerprint] = learned

    def get(self, key: str) -> LearnedLayout | None:
        return self._layouts.get(key)

    def put(self, learned: LearnedLayout) -> None:
        with self._lock:
            self._layouts[learned.fingerprint] = learned
            if self._path:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self._path.with_suffix(".tmp")
                tmp.write_text(
                    json.dumps([v.to_json() for v in self._layouts.values()], ensure_ascii=False),
                    encoding="utf-8",
                )
                tmp.replace(self._path)

    def __len__(self) -> int:
        return len(self._layouts)
