"""Build the spreadsheets registrars send: CSV (UTF-8, BOM, GBK) and XLSX."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook

HEADERS = [
    "姓名",
    "性别",
    "出生日期",
    "民族",
    "国籍/地区",
    "身份证件类型",
    "身份证件号",
    "现住址",
    "联系电话",
    "年级",
    "班级",
    "家庭成员1姓名",
    "家庭成员1关系",
    "家庭成员1联系电话",
]


def student_row(i: int, **overrides: Any) -> dict[str, Any]:
    from datetime import date

    from backend.records.ids import make_resident_id

    born = date(2018, 1 + i % 12, 1 + i % 28)
    sex = "男" if i % 2 else "女"
    row = {
        "姓名": f"学生{i:03d}",
        "性别": sex,
        "出生日期": born.isoformat(),
        "民族": "汉族",
        "国籍/地区": "中国",
        "身份证件类型": "居民身份证",
        "身份证件号": make_resident_id("330106", born, i, "1" if sex == "男" else "2"),
        "现住址": f"浙江省杭州市西湖区文三路{i}号",
        "联系电话": f"1381234{i:04d}",
        "年级": 2,
        "班级": "二年级(1)班",
        "家庭成员1姓名": f"家长{i:03d}",
        "家庭成员1关系": "父亲",
        "家庭成员1联系电话": f"1391234{i:04d}",
    }
    row.update(overrides)
    return row


def to_csv(
    rows: Sequence[dict[str, Any]], headers: Sequence[str] = HEADERS, encoding: str = "utf-8"
) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    for row in rows:
        writer.writerow([row.get(h, "") for h in headers])
    return out.getvalue().encode(encoding)


def to_xlsx(rows: Sequence[dict[str, Any]], headers: Sequence[str] = HEADERS) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(headers))
    for row in rows:
        sheet.append([row.get(h) for h in headers])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
