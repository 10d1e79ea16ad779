"""The field catalog: every field of a student's record that the confirmation form shows, in
the order of the national 《全国中小学生学籍基础信息确认表》. Everything else (validation,
import, forms, corrections, approvals) reads this instead of repeating field lists.

Pure data and pure functions: no database, no web, so the form tools can use it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum


class FieldType(StrEnum):
    text = "text"  # Chinese or mixed text
    date = "date"  # YYYY-MM-DD
    year_month = "year_month"  # YYYY-MM
    id_number = "id_number"  # an ID document number (digits, maybe a final X)
    phone = "phone"  # mainland mobile or landline digits
    choice = "choice"  # one of `options`, stored by code, printed by label
    yes_no = "yes_no"  # 是 / 否, stored "1" / "0"


class Chain(StrEnum):
    """The review chain a change to a field goes through (`records.chains` has its steps)."""

    ordinary = "ordinary"  # 学籍数据维护: the registrar enters, a school leader approves
    key_data = "key_data"  # 关键数据变更: the registrar enters, the administering authority reviews


@dataclass(frozen=True, slots=True)
class Field:
    code: str
    label: str
    type: FieldType
    key: bool = False  # 关键数据: county review and evidence required to change
    printed: bool = True
    required: bool = False
    max_length: int = 100
    options: Mapping[str, str] = field(default_factory=dict)  # code → label
    guardian: int | None = None  # 1 or 2 for guardian fields
    # masked in every response, report, list, export and log unless revealed (audited), by
    # the one rule in backend.masking, which picks the mask by `type`
    sensitive: bool = False
    # What other registry systems print for it (the national system, a province's own, a
    # school's sheet), beside `label`: how a form printed elsewhere is read by its labels
    # (`backend.ocr`'s foreign reader). Wordings, not spellings: matching is tolerant.
    printed_as: tuple[str, ...] = ()

    @property
    def chain(self) -> Chain:
        """Which review chain a change to this field takes: key fields the key-data chain."""
        return Chain.key_data if self.key else Chain.ordinary

    def label_of(self, value: str | None) -> str:
        """What the form prints for a stored value."""
        if value is None or value == "":
            return ""
        if self.type is FieldType.choice:
            return self.options.get(value, value)
        if self.type is FieldType.yes_no:
            return YES_NO.get(value, value)
        return value


SEX = {"1": "男", "2": "女"}
YES_NO = {"1": "是", "0": "否"}

# GB 3304 民族代码
ETHNICITY = {
    "01": "汉族",
    "02": "蒙古族",
    "03": "回族",
    "04": "藏族",
    "05": "维吾尔族",
    "06": "苗族",
    "07": "彝族",
    "08": "壮族",
    "09": "布依族",
    "10": "朝鲜族",
    "11": "满族",
    "12": "侗族",
    "13": "瑶族",
    "14": "白族",
    "15": "土家族",
    "16": "哈尼族",
    "17": "哈萨克族",
    "18": "傣族",
    "19": "黎族",
    "20": "傈僳族",
    "21": "佤族",
    "22": "畲族",
    "23": "高山族",
    "24": "拉祜族",
    "25": "水族",
    "26": "东乡族",
    "27": "纳西族",
    "28": "景颇族",
    "29": "柯尔克孜族",
    "30": "土族",
    "31": "达斡尔族",
    "32": "仫佬族",
    "33": "羌族",
    "34": "布朗族",
    "35": "撒拉族",
    "36": "毛南族",
    "37": "仡佬族",
    "38": "锡伯族",
    "39": "阿昌族",
    "40": "普米族",
    "41": "塔吉克族",
    "42": "怒族",
    "43": "乌孜别克族",
    "44": "俄罗斯族",
    "45": "鄂温克族",
    "46": "德昂族",
    "47": "保安族",
    "48": "裕固族",
    "49": "京族",
    "50": "塔塔尔族",
    "51": "独龙族",
    "52": "鄂伦春族",
    "53": "赫哲族",
    "54": "门巴族",
    "55": "珞巴族",
    "56": "基诺族",
}
ID_TYPES = {
    "1": "居民身份证",
    "2": "香港特区护照/身份证明",
    "3": "澳门特区护照/身份证明",
    "4": "台湾居民来往大陆通行证",
    "5": "境外永久居住证",
    "6": "护照",
    "7": "户口簿",
    "9": "其他",
}
RESIDENT_ID = "1"
NATIONALITY = {"CN": "中国", "HK": "中国香港", "MO": "中国澳门", "TW": "中国台湾", "XX": "其他"}
OVERSEAS = {"0": "否", "1": "香港同胞", "2": "澳门同胞", "3": "台湾同胞", "4": "华侨", "5": "外籍"}
HEALTH = {"1": "健康或良好", "2": "一般或较弱", "3": "有慢性病", "4": "有生理缺陷", "5": "残疾"}
HOUSEHOLD_TYPE = {"1": "农业户口", "2": "非农业户口"}
DISABILITY = {
    "0": "无残疾",
    "1": "视力残疾",
    "2": "听力残疾",
    "3": "言语残疾",
    "4": "肢体残疾",
    "5": "智力残疾",
    "6": "精神残疾",
    "7": "多重残疾",
    "9": "其他残疾",
}
ENROLMENT_METHOD = {
    "1": "就近入学",
    "2": "相对就近入学",
    "3": "体育特招",
    "4": "考试",
    "5": "派位",
    "9": "其他",
}
STUDY_MODE = {"1": "走读", "2": "住校"}
RELATION = {
    "1": "父亲",
    "2": "母亲",
    "3": "祖父",
    "4": "祖母",
    "5": "外祖父",
    "6": "外祖母",
    "7": "其他亲属",
    "9": "其他",
}

T = FieldType
STUDENT_FIELDS: tuple[Field, ...] = (
    Field("name", "姓名", T.text, key=True, required=True, max_length=50, printed_as=("学生姓名",)),
    Field("former_name", "曾用名", T.text, max_length=50),
    Field("sex", "性别", T.choice, key=True, required=True, options=SEX),
    Field(
        "birth_date",
        "出生日期",
        T.date,
        key=True,
        required=True,
        printed_as=("出生年月日", "出生年月"),
    ),
    Field("birthplace", "出生地", T.text, max_length=100, printed_as=("出生地点",)),
    Field("native_place", "籍贯", T.text, max_length=100),
    Field("ethnicity", "民族", T.choice, key=True, required=True, options=ETHNICITY),
    Field(
        "nationality",
        "国籍/地区",
        T.choice,
        key=True,
        required=True,
        options=NATIONALITY,
        printed_as=("国籍", "国籍地区"),
    ),
    Field(
        "id_type",
        "身份证件类型",
        T.choice,
        key=True,
        required=True,
        options=ID_TYPES,
        printed_as=("证件类型",),
    ),
    Field(
        "id_number",
        "身份证件号",
        T.id_number,
        key=True,
        max_length=30,
        sensitive=True,
        printed_as=(
            "身份证件号码",
            "公民身份号码",
            "身份证号",
            "身份证号码",
            "证件号码",
            "学生身份证号",
        ),
    ),
    Field(
        "overseas_status",
        "港澳台侨外",
        T.choice,
        key=True,
        options=OVERSEAS,
        printed_as=("港澳台侨",),
    ),
    Field("health", "健康状况", T.choice, options=HEALTH),
    Field(
        "household_address",
        "户口所在地",
        T.text,
        max_length=120,
        sensitive=True,
        printed_as=("户籍地址", "户籍所在地", "户口地址", "户籍"),
    ),
    Field("household_type", "户口性质", T.choice, options=HOUSEHOLD_TYPE, printed_as=("户籍性质",)),
    Field(
        "current_address",
        "现住址",
        T.text,
        max_length=120,
        sensitive=True,
        printed_as=("现居住地址", "家庭住址", "居住地址"),
    ),
    Field(
        "phone",
        "联系电话",
        T.phone,
        max_length=20,
        sensitive=True,
        printed_as=("手机号码", "家庭电话", "联系手机"),
    ),
    Field("only_child", "是否独生子女", T.yes_no, printed_as=("独生子女",)),
    Field("left_behind", "是否留守儿童", T.yes_no, printed_as=("留守儿童",)),
    Field(
        "migrant_child",
        "是否进城务工人员随迁子女",
        T.yes_no,
        printed_as=("随迁子女", "进城务工人员随迁子女"),
    ),
    Field("orphan", "是否孤儿", T.yes_no, printed_as=("孤儿",)),
    Field("disability", "残疾类型", T.choice, options=DISABILITY, printed_as=("残疾人类型",)),
    Field("enrolment_month", "入学年月", T.year_month, printed_as=("入学时间", "入学日期")),
    Field("enrolment_method", "入学方式", T.choice, options=ENROLMENT_METHOD),
    Field("study_mode", "就读方式", T.choice, options=STUDY_MODE),
)


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


def _guardian_printed_as(n: int, code: str) -> tuple[str, ...]:
    """Guardian n's field as other systems print it: "监护人n…", "家长n…", and, for the first,
    no number."""
    heads = [head.format(n=n) for head in _GUARDIAN_HEADS]
    if n == 1:
        heads += ["监护人", "家长"]
    tail = code.split("_", 1)[1]
    return tuple(head + end for head in heads for end in _GUARDIAN_TAILS[tail])


def _guardian_fields(n: int) -> tuple[Field, ...]:
    return tuple(
        replace(field, printed_as=_guardian_printed_as(n, field.code))
        for field in _guardian_field_labels(n)
    )


def _guardian_field_labels(n: int) -> tuple[Field, ...]:
    who = f"家庭成员{n}"
    return (
        Field(f"guardian{n}_name", f"{who}姓名", T.text, max_length=50, guardian=n),
        Field(f"guardian{n}_relation", f"{who}关系", T.choice, options=RELATION, guardian=n),
        Field(
            f"guardian{n}_phone",
            f"{who}联系电话",
            T.phone,
            max_length=20,
            guardian=n,
            sensitive=True,
        ),
        Field(f"guardian{n}_id_type", f"{who}身份证件类型", T.choice, options=ID_TYPES, guardian=n),
        Field(
            f"guardian{n}_id_number",
            f"{who}身份证件号",
            T.id_number,
            max_length=30,
            guardian=n,
            sensitive=True,
        ),
        Field(f"guardian{n}_is_guardian", f"{who}是否监护人", T.yes_no, guardian=n),
        Field(f"guardian{n}_employer", f"{who}工作单位", T.text, max_length=100, guardian=n),
    )


GUARDIAN_FIELDS: tuple[Field, ...] = _guardian_fields(1) + _guardian_fields(2)
FIELDS: tuple[Field, ...] = STUDENT_FIELDS + GUARDIAN_FIELDS
BY_CODE: Mapping[str, Field] = {f.code: f for f in FIELDS}
KEY_FIELDS = frozenset(f.code for f in FIELDS if f.key)
PRINTED_FIELDS: tuple[Field, ...] = tuple(f for f in FIELDS if f.printed)


def printed_names() -> dict[str, tuple[str, ...]]:
    """Catalog code → every label a printed form may carry for it (the catalog's first)."""
    return {f.code: tuple(dict.fromkeys((f.label, *f.printed_as))) for f in PRINTED_FIELDS}
