"""The national system's list of problem records (全国学籍系统下发的问题学籍名单), as a CSV
or XLSX file: pure parsing, no database.

Columns (the header row names them; order free, extra columns ignored):

    学校标识码   required: the school's 10-digit code
    学籍号       the student's registry number (G/J…); or
    身份证件号   the ID number (身份证号 also accepted) — one of the two is required per row
    姓名         optional, shown back in the report
    问题类型     required: 身份证号不存在 / 姓名与身份证号不匹配 / 重复 (or the English kinds)
    问题描述     optional: what the national system says (说明 also accepted)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backend.records.ids import normalise_id_number
from backend.records.importer import (
    MAX_BYTES,
    ImportFileError,
    RowError,
    _csv_rows,
    _xlsx_rows,
)
from backend.records.problem_tables import CaseKind

MAX_ROWS = 50_000

HEADERS = {
    "学校标识码": "school_code",
    "学籍号": "registry_number",
    "全国学籍号": "registry_number",
    "身份证件号": "id_number",
    "身份证号": "id_number",
    "姓名": "name",
    "问题类型": "kind",
    "问题描述": "detail",
    "说明": "detail",
}
LABEL = {
    "school_code": "学校标识码",
    "registry_number": "学籍号",
    "id_number": "身份证件号",
    "name": "姓名",
    "kind": "问题类型",
}

NATIONAL_KIND_LABEL = {
    CaseKind.id_not_found: "身份证号不存在",
    CaseKind.name_id_mismatch: "姓名与身份证号不匹配",
    CaseKind.national_duplicate: "重复",
}
KINDS: dict[str, CaseKind] = {
    **{label: kind for kind, label in NATIONAL_KIND_LABEL.items()},
    "身份证件号不存在": CaseKind.id_not_found,
    "姓名与身份证件号不匹配": CaseKind.name_id_mismatch,
    "身份证号重复": CaseKind.national_duplicate,
    "身份证件号重复": CaseKind.national_duplicate,
    "重复学籍": CaseKind.national_duplicate,
    **{kind.value: kind for kind in NATIONAL_KIND_LABEL},
}


@dataclass(frozen=True, slots=True)
class ListRow:
    row: int  # as the spreadsheet shows it (the header is row 1)
    school_code: str
    registry_number: str
    id_number: str
    name: str
    kind: CaseKind
    detail: str


@dataclass
class NationalList:
    rows: list[ListRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    total_rows: int = 0


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def parse(content: bytes) -> NationalList:
    """The list's rows, each checked on its own; a row with a problem is reported (row,
    column, a Chinese message) and left out. `ImportFileError` for a file that cannot be read
    at all (wrong format, no header, a required column missing)."""
    errors: list[RowError] = []
    if len(content) > MAX_BYTES:
        raise ImportFileError(
            "file_too_large", f"文件超过 {MAX_BYTES // 1024 // 1024} MB，请拆分后再导入"
        )
    if not content.strip():
        raise ImportFileError("empty_file", "文件是空的")
    if content.startswith(b"PK\x03\x04"):
        rows = _xlsx_rows(content, errors)
    elif content.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError("legacy_xls", "不支持旧版 .xls 文件，请另存为 .xlsx 或 CSV")
    else:
        rows = _csv_rows(content)
    header: list[str | None] | None = None
    parsed = NationalList(errors=errors)
    for number, raw in enumerate(rows, start=1):
        cells = [_text(v) for v in raw]
        if header is None:
            if not any(cells):
                continue
            header = [HEADERS.get(c.replace(" ", "")) for c in cells]
            present = set(header)
            missing = [LABEL[c] for c in ("school_code", "kind") if c not in present]
            if missing:
                raise ImportFileError("missing_columns", f"名单缺少必需的列：{'、'.join(missing)}")
            if "registry_number" not in present and "id_number" not in present:
                raise ImportFileError("missing_columns", "名单须有“学籍号”或“身份证件号”列")
            continue
        if not any(cells):
            continue
        parsed.total_rows += 1
        if parsed.total_rows > MAX_ROWS:
            raise ImportFileError("too_many_rows", f"名单超过 {MAX_ROWS} 行，请拆分后再导入")
        values = {code: cells[i] for i, code in enumerate(header) if code and i < len(cells)}
        row = _row(number, values, parsed.errors)
        if row is not None:
            parsed.rows.append(row)
    if header is None:
        raise ImportFileError("empty_file", "名单是空的：第一行应为列名")
    return parsed


def _row(number: int, values: dict[str, str], errors: list[RowError]) -> ListRow | None:
    school_code = values.get("school_code", "")
    registry_number = values.get("registry_number", "").upper()
    id_number = normalise_id_number(values.get("id_number", ""))
    kind = KINDS.get(values.get("kind", "").replace(" ", ""))
    if not school_code:
        errors.append(RowError(number, LABEL["school_code"], "缺少学校标识码"))
        return None
    if not registry_number and not id_number:
        errors.append(RowError(number, LABEL["registry_number"], "学籍号和身份证件号至少填一项"))
        return None
    if kind is None:
        known = "、".join(NATIONAL_KIND_LABEL.values())
        errors.append(RowError(number, LABEL["kind"], f"问题类型应为：{known}"))
        return None
    return ListRow(
        number,
        school_code,
        registry_number,
        id_number,
        values.get("name", ""),
        kind,
        values.get("detail", ""),
    )
