"""The names other registry systems print for the catalog's fields, so a form printed by the
national system, a province's own system or a school's spreadsheet can be read by its labels
(`backend.ocr.check_foreign_photo`). The catalog's own label always counts; these are the
others seen on forms (notice 001 and the provinces' 核对表). Matching is tolerant (width,
punctuation, brackets, a misread character), so list wordings, not spellings.
"""

from __future__ import annotations

from collections.abc import Mapping

from backend.records.catalog import PRINTED_FIELDS

_STUDENT: Mapping[str, tuple[str, ...]] = {
    "name": ("学生姓名", "姓名"),
    "former_name": ("曾用名",),
    "sex": ("性别",),
    "birth_date": ("出生日期", "出生年月日", "出生年月"),
    "birthplace": ("出生地", "出生地点"),
    "native_place": ("籍贯",),
    "ethnicity": ("民族",),
    "nationality": ("国籍", "国籍/地区", "国籍地区"),
    "id_type": ("身份证件类型", "证件类型"),
    "id_number": (
        "身份证件号",
        "身份证件号码",
        "公民身份号码",
        "身份证号",
        "身份证号码",
        "证件号码",
        "学生身份证号",
    ),
    "overseas_status": ("港澳台侨外", "港澳台侨"),
    "health": ("健康状况",),
    "household_address": ("户口所在地", "户籍地址", "户籍所在地", "户口地址", "户籍"),
    "household_type": ("户口性质", "户籍性质"),
    "current_address": ("现住址", "现居住地址", "家庭住址", "居住地址"),
    "phone": ("联系电话", "手机号码", "家庭电话", "联系手机"),
    "only_child": ("是否独生子女", "独生子女"),
    "left_behind": ("是否留守儿童", "留守儿童"),
    "migrant_child": ("是否进城务工人员随迁子女", "随迁子女", "进城务工人员随迁子女"),
    "orphan": ("是否孤儿", "孤儿"),
    "disability": ("残疾类型", "残疾人类型"),
    "enrolment_month": ("入学年月", "入学时间", "入学日期"),
    "enrolment_method": ("入学方式",),
    "study_mode": ("就读方式",),
}
# Guardian n: "家庭成员n…" (ours), "监护人n…", "家长n…", and, for the first, no number.
_GUARDIAN_TAILS: Mapping[str, tuple[str, ...]] = {
    "name": ("姓名",),
    "relation": ("关系", "与学生关系"),
    "phone": ("联系电话", "手机号码", "电话"),
    "id_type": ("身份证件类型", "证件类型"),
    "id_number": ("身份证件号", "身份证号", "公民身份号码", "证件号码"),
    "is_guardian": ("是否监护人",),
    "employer": ("工作单位", "单位"),
}
_GUARDIAN_HEADS = ("家庭成员{n}", "监护人{n}", "家长{n}", "成员{n}")


def other_names() -> dict[str, tuple[str, ...]]:
    """Catalog code → every label a form may print for it (the catalog's first)."""
    names: dict[str, tuple[str, ...]] = {}
    for field in PRINTED_FIELDS:
        if field.guardian is None:
            extra = _STUDENT.get(field.code, ())
        else:
            n, tail = field.guardian, field.code.split("_", 1)[1]
            heads = [h.format(n=n) for h in _GUARDIAN_HEADS]
            if n == 1:
                heads += ["监护人", "家长"]
            extra = tuple(h + t for h in heads for t in _GUARDIAN_TAILS[tail])
        names[field.code] = tuple(dict.fromkeys((field.label, *extra)))
    return names
