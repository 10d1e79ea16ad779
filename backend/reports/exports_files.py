"""The files an export produces, pure: a header block saying who exported what and when, then
a table, as XLSX (openpyxl's write-only mode: rows go to disk as they come, so a large file
never sits in memory as cells) or CSV (UTF-8 with a BOM, so Excel opens Chinese correctly).

No database, no web: a sheet is columns and an iterable of rows (`ExportTable`); the rows a
service reads are spooled to a temporary file first (`Spool`), so the header's row count is
exactly the number of rows the file carries, whatever was written meanwhile.

A cell that starts like a formula (`=`, `+`, `-`, `@`, a tab or a carriage return) is written
as text: imported free text must never run in the reader's spreadsheet (CSV: prefixed with a
quote, as OWASP advises; XLSX: the cell typed as a string).
"""

from __future__ import annotations

import csv
import io
import pickle
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from backend.workdays import CHINA


class FileFormat(StrEnum):
    xlsx = "xlsx"
    csv = "csv"


CONTENT_TYPE = {
    FileFormat.xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    FileFormat.csv: "text/csv; charset=utf-8",
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
Cell = str | int | float | date | datetime | None
Row = Sequence[Cell]


@dataclass(frozen=True, slots=True)
class Column:
    label: str
    width: int = 14  # characters, in the XLSX


@dataclass(frozen=True, slots=True)
class Header:
    """Who exported what, when, over which scope, and how many rows: the file's first lines
    (and, in XLSX, its document properties)."""

    title: str  # 问题学籍名单
    exported_by: str  # the account's name
    role_label: str  # 县级学籍主管部门
    exported_at: datetime  # aware; shown in China time
    scope_label: str  # 浙江省杭州市西湖区
    row_count: int
    note: str = ""

    @property
    def china_time(self) -> str:
        return self.exported_at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S") + "（北京时间）"

    def lines(self) -> list[tuple[str, str]]:
        lines = [
            ("导出内容", self.title),
            ("导出人", f"{self.exported_by}（{self.role_label}）"),
            ("导出时间", self.china_time),
            ("导出范围", self.scope_label),
            ("数据行数", str(self.row_count)),
        ]
        if self.note:
            lines.append(("说明", self.note))
        return lines


@dataclass(frozen=True, slots=True)
class ExportTable:
    columns: Sequence[Column]
    rows: Iterable[Row]


def safe_text(value: str) -> str:
    """A CSV cell that cannot start a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv_cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return safe_text(value)
    return str(value)


def write_csv(header: Header, table: ExportTable, out: IO[bytes]) -> None:
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    try:
        writer = csv.writer(text)
        for key, value in header.lines():
            writer.writerow([key, safe_text(value)])
        writer.writerow([])
        writer.writerow([c.label for c in table.columns])
        for row in table.rows:
            writer.writerow([_csv_cell(v) for v in row])
        text.flush()
    finally:
        text.detach()  # the caller owns `out`


def _xlsx_value(value: Cell) -> Cell:
    if isinstance(value, datetime):
        # Excel has no time zones: the China time people read, as text that cannot be misread.
        return value.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")
    return value


def write_xlsx(header: Header, table: ExportTable, out: IO[bytes]) -> None:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(header.title[:31] or "导出")
    for index, column in enumerate(table.columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    bold = Font(bold=True)

    def text_cell(value: Cell, *, strong: bool = False) -> WriteOnlyCell:
        cell = WriteOnlyCell(sheet, value=_xlsx_value(value))
        if isinstance(value, str):
            cell.data_type = "s"  # never a formula, whatever the text starts with
        if strong:
            cell.font = bold
        return cell

    def data_cell(value: Cell) -> Any:
        # A plain value costs a fifth of a cell object; only text openpyxl would take for a
        # formula (it starts with "=") or a spreadsheet might (+ - @) needs the typed cell.
        if isinstance(value, str) and value.startswith(_FORMULA_START):
            return text_cell(value)
        return _xlsx_value(value)

    for key, value in header.lines():
        sheet.append([text_cell(key, strong=True), text_cell(value)])
    sheet.append([])
    sheet.append([text_cell(c.label, strong=True) for c in table.columns])
    for row in table.rows:
        sheet.append([data_cell(v) for v in row])
    properties = book.properties
    properties.creator = header.exported_by
    properties.lastModifiedBy = header.exported_by
    properties.title = header.title
    properties.subject = header.scope_label
    properties.description = "；".join(f"{k}：{v}" for k, v in header.lines())
    properties.keywords = f"rows={header.row_count}"
    properties.created = header.exported_at.astimezone(UTC).replace(tzinfo=None)  # as UTC
    properties.modified = properties.created
    book.save(out)


def write(file_format: FileFormat, header: Header, table: ExportTable, out: IO[bytes]) -> None:
    if file_format is FileFormat.xlsx:
        write_xlsx(header, table, out)
    else:
        write_csv(header, table, out)


class Spool:
    """Rows kept in a temporary file until they are all read (and counted): a large export
    holds one batch in memory at a time, not the whole list."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self.count = 0

    def add(self, rows: Sequence[Row]) -> None:
        if rows:
            pickle.dump(list(rows), self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self.count += len(rows)

    def rows(self) -> Iterator[Row]:
        self._file.seek(0)
        while True:
            try:
                batch = pickle.load(self._file)
            except EOFError:
                return
            yield from batch

    def close(self) -> None:
        self._file.close()
