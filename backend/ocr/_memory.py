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
    columns: tuple[float, ...] = ()  # where the header row's cells start (share of width)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LearnedLayout:
        def ref(v: Any) -> Any:
            return None if v is None else tuple(v)

        return cls(
            fingerprint=data["fingerprint"],
            fields={
                code: FieldMap(tuple(m["label"]), tuple(m["value"]), ref(m["correction"]))
                for code, m in data["fields"].items()
            },
            signature=ref(data["signature"]),
            date=ref(data["date"]),
            labels=dict(data["labels"]),
            columns=tuple(data.get("columns", ())),
        )


COLUMN_TOLERANCE = 0.02  # of the table's width


def fingerprint(rows: tuple[tuple[Box, ...], ...]) -> str:
    """The table's lines: how many cells each row has. Layouts that agree on it are told
    apart by their columns (`columns`), and two labels are read to be sure."""
    spec = repr(tuple(len(r) for r in rows))
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def columns(rows: tuple[tuple[Box, ...], ...], table: Box) -> tuple[float, ...]:
    """Where the first row's cells start, as shares of the table's width."""
    x0, _, x1, _ = table
    width = max(1, x1 - x0)
    return tuple(round((c[0] - x0) / width, 4) for c in rows[0]) if rows else ()


class LayoutMemory:
    """Learned layouts by fingerprint, in memory, optionally kept in a JSON file."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._path = Path(path) if path else None
        self._lock = threading.Lock()
        self._layouts: dict[str, list[LearnedLayout]] = {}
        if self._path and self._path.is_file():
            for item in json.loads(self._path.read_text(encoding="utf-8")):
                learned = LearnedLayout.from_json(item)
                self._layouts.setdefault(learned.fingerprint, []).append(learned)

    def get(self, key: str, cols: tuple[float, ...]) -> LearnedLayout | None:
        for learned in self._layouts.get(key, ()):
            if len(learned.columns) == len(cols) and all(
                abs(a - b) <= COLUMN_TOLERANCE for a, b in zip(learned.columns, cols, strict=True)
            ):
                return learned
        return None

    def put(self, learned: LearnedLayout) -> None:
        with self._lock:
            same = self._layouts.setdefault(learned.fingerprint, [])
            same[:] = [
                old for old in same if self.get(learned.fingerprint, learned.columns) is not old
            ]
            same.append(learned)
            if self._path:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self._path.with_suffix(".tmp")
                tmp.write_text(
                    json.dumps(
                        [v.to_json() for same in self._layouts.values() for v in same],
                        ensure_ascii=False,
                    ),
                    encoding="utf-8",
                )
                tmp.replace(self._path)

    def __len__(self) -> int:
        return sum(len(same) for same in self._layouts.values())
