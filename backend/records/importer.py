"""Reading a registrar's spreadsheet (CSV or XLSX) into validated rows.

Headers may be the catalog's Chinese labels (as registrars' exports have them) or its codes.
Every problem is reported with its row number (as the spreadsheet shows it), its column and a
Chinese message; nothing here touches the database.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from backend.records.catalog import BY_CODE, FIELDS
from backend.records.validate import InvalidValue, clean, to_text

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000
MAX_COLUMNS = 200

ORG_COLUMNS = {
    "school_code": ("学校标识码", "学校代码"),
    "grade": ("年级",),
    "class_name": ("班级", "班级名称"),
    "registry_number": ("学籍号", "全国学籍号"),
}
ALIASES = {
    "身份证号": "id_number",
    "身份证号码": "id_number",
    "身份证件号码": "id_number",
    "证件号码": "id_number",
    "证件类型": "id_type",
    "出生年月日": "birth_date",
    "现居住地址": "current_address",
    "户籍地址": "household_address",
    "电话": "phone",
}
REQUIRED = ("name", "sex", "birth_date", "grade", "class_name")


def _header_map() -> dict[str, str]:
    mapping: dict[str, str] = {}
    for f in FIELDS:
        mapping[f.code] = f.code
        mapping[f.label] = f.code
    for code, labels in ORG_COLUMNS.items():
        mapping[code] = code
        for label in labels:
            mapping[label] = code
    mapping.update(ALIASES)
    return mapping


HEADERS = _header_map()
LABEL_OF = {**{f.code: f.label for f in FIELDS}, **{c: ls[0] for c, ls in ORG_COLUMNS.items()}}


class ImportFileError(ValueError):
    """The file as a whole cannot be read; the message is Chinese, `code` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    column: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "message": self.message}


@dataclass
class ParsedRow:
    row: int
    values: dict[str, str]  # catalog code → stored value
    org: dict[str, str]  # school_code, grade, class_name, registry_number


@dataclass
class ParsedFile:
    columns: list[str]  # the codes the file has, in its order
    rows: list[ParsedRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    total_rows: int = 0


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileError("undecodable_file", "无法识别文件编码，请另存为 UTF-8 或 GBK 编码的 CSV")


def _csv_rows(content: bytes) -> Iterator[list[object]]:
    text = _decode(content)
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", "\t", ";"), key=first_line.count)
    for row in csv.reader(io.StringIO(text), delimiter=delimiter):
        yield list(row)


def _xlsx_rows(content: bytes, errors: list[RowError]) -> Iterator[list[object]]:
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > 20 * MAX_BYTES:
            raise ImportFileError("file_too_large", "表格解压后过大，请拆分后再导入")
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=False)
    except ImportFileError:
        raise
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise ImportFileError(
            "unreadable_file", "无法读取该 Excel 文件，请确认是 .xlsx 格式"
        ) from exc
    sheet = workbook.worksheets[0]
    for number, row in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS), start=1):
        values: list[object] = []
        for column, cell in enumerate(row, start=1):
            value = cell.value
            if isinstance(value, str) and value.startswith("="):
                errors.append(
                    RowError(number, f"第{column}列", "单元格含公式，请先复制后“粘贴为数值”再导入")
                )
                value = None
            values.append(value)
        yield values
    workbook.close()


def parse(filename: str, content: bytes) -> ParsedFile:
    if len(content) > MAX_BYTES:
        raise ImportFileError(
            "file_too_large", f"文件超过 {MAX_BYTES // 1024 // 1024} MB，请拆分后再导入"
        )
    if not content.strip():
        raise ImportFileError("empty_file", "文件是空的")
    sheet_errors: list[RowError] = []
    if content.startswith(b"PK\x03\x04"):
        rows = _xlsx_rows(content, sheet_errors)
    elif content.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError("legacy_xls", "不支持旧版 .xls 文件，请另存为 .xlsx 或 CSV")
    else:
        rows = _csv_rows(content)
    header: list[str] | None = None
    parsed: ParsedFile | None = None
    for number, raw in enumerate(rows, start=1):
        cells = [to_text(v) for v in raw]
        if header is None:
            if not any(cells):
                continue
            header = cells
            parsed = _start(header)
            parsed.errors.extend(e for e in sheet_errors if e.row == number)
            continue
        assert parsed is not None
        if not any(cells):
            continue
        parsed.total_rows += 1
        if parsed.total_rows > MAX_ROWS:
            raise ImportFileError("too_many_rows", f"一次最多导入 {MAX_ROWS} 行，请拆分后再导入")
        parsed.errors.extend(e for e in sheet_errors if e.row == number)
        _read_row(parsed, header, number, raw)
    if parsed is None:
        raise ImportFileError("empty_file", "文件中没有表头和数据")
    if parsed.total_rows == 0:
        raise ImportFileError("no_rows", "文件只有表头，没有学生数据")
    _flag_repeated_rows(parsed)
    return parsed


def _start(header: list[str]) -> ParsedFile:
    codes = [HEADERS.get(h.strip().lstrip("*").strip()) for h in header]
    missing = [LABEL_OF[c] for c in REQUIRED if c not in codes]
    if missing:
        raise ImportFileError("missing_columns", f"缺少必填列：{'、'.join(missing)}")
    seen: set[str] = set()
    for code in codes:
        if code is not None and code in seen:
            raise ImportFileError("repeated_column", f"列“{LABEL_OF[code]}”出现了两次")
        if code is not None:
            seen.add(code)
    return ParsedFile(columns=[c for c in codes if c is not None])


def _read_row(parsed: ParsedFile, header: list[str], number: int, raw: list[object]) -> None:
    values: dict[str, str] = {}
    org: dict[str, str] = {}
    ok = True
    for position, title in enumerate(header):
        code = HEADERS.get(title.strip().lstrip("*").strip())
        if code is None:
            continue
        cell = raw[position] if position < len(raw) else None
        if code in ORG_COLUMNS:
            org[code] = to_text(cell)
            continue
        try:
            value = clean(BY_CODE[code], cell)
        except InvalidValue as exc:
            parsed.errors.append(RowError(number, title, str(exc)))
            ok = False
            continue
        if value is not None:
            values[code] = value
    grade = org.get("grade", "")
    if not grade.isdigit() or not 1 <= int(grade) <= 12:
        parsed.errors.append(RowError(number, LABEL_OF["grade"], "年级须为 1–12 的数字"))
        ok = False
    if not org.get("class_name"):
        parsed.errors.append(RowError(number, LABEL_OF["class_name"], "班级不能为空"))
        ok = False
    if ok:
        parsed.rows.append(ParsedRow(number, values, org))


def _flag_repeated_rows(parsed: ParsedFile) -> None:
    first_seen: dict[tuple[str, ...], int] = {}
    kept: list[ParsedRow] = []
    for row in parsed.rows:
        key = (
            row.org.get("school_code", ""),
            row.org.get("registry_number", "")
            or row.values.get("id_number", "")
            or f"{row.values.get('name')}|{row.values.get('birth_date')}",
        )
        if key in first_seen:
            parsed.errors.append(
                RowError(row.row, LABEL_OF["name"], f"与第 {first_seen[key]} 行是同一名学生")
            )
            continue
        first_seen[key] = row.row
        kept.append(row)
    parsed.rows = kept
