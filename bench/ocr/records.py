"""Seeded, realistic student records (stored values, by catalog code) and small edits of
them, for the OCR benchmark and tests."""

from __future__ import annotations

import random
from datetime import date, timedelta

from backend.records.catalog import BY_CODE, PRINTED_FIELDS, FieldType

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
COMPOUND = ["欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "慕容", "令狐"]
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国文斌宇浩凯"
    "子涵梓轩欣怡雨泽一诺思远博文佳琪俊熙嘉怡宇航浩然梦瑶晨曦若曦子墨语桐诗涵"
    "志鸿晓东海燕春梅立新家豪天佑昊天紫萱雅琴振华德明婷婷瑞安宁远嘉欣书瑶铭泽"
)
PROVINCES = [
    ("浙江省", ["杭州市", "宁波市", "温州市", "绍兴市"], "3301"),
    ("江苏省", ["南京市", "苏州市", "无锡市", "常州市"], "3201"),
    ("广东省", ["广州市", "深圳市", "佛山市", "东莞市"], "4401"),
    ("四川省", ["成都市", "绵阳市", "宜宾市", "南充市"], "5101"),
    ("河南省", ["郑州市", "洛阳市", "开封市", "新乡市"], "4101"),
    ("湖北省", ["武汉市", "宜昌市", "襄阳市", "荆州市"], "4201"),
]
DISTRICTS = ["西湖区", "鼓楼区", "天河区", "武侯区", "金水区", "江汉区", "高新区", "城关镇"]
STREETS = ["文三路", "解放路", "人民大道", "中山北路", "建设街", "和平巷", "新华路", "滨江大道"]
ESTATES = ["翠苑小区", "阳光花园", "金色家园", "锦绣城", "幸福里", "东方明珠苑", "南湖新村"]
EMPLOYERS = [
    "杭州市西湖区某某科技有限公司",
    "第一人民医院",
    "个体经营",
    "无",
    "市建筑工程有限公司",
    "区人民政府办公室",
    "中国邮政集团有限公司",
    "城关镇中心小学",
    "顺丰速运有限公司研发中心",
]
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def id_number(rng: random.Random, region: str, born: date) -> str:
    body = f"{region}{born:%Y%m%d}{rng.randint(0, 999):03d}"
    return body + _CHECK[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]


def person_name(rng: random.Random) -> str:
    surname = rng.choice(COMPOUND) if rng.random() < 0.05 else rng.choice(SURNAMES)
    return surname + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def _day(rng: random.Random, first: int, last: int) -> date:
    start = date(first, 1, 1)
    return start + timedelta(days=rng.randrange((date(last, 12, 31) - start).days))


def mobile(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return f"0{rng.randint(10, 999):d}-{rng.randint(20000000, 89999999)}"
    return f"1{rng.choice('3456789')}{rng.randint(0, 999999999):09d}"


def address(rng: random.Random, province: tuple[str, list[str], str]) -> str:
    p, cities, _ = province
    parts = [
        p,
        rng.choice(cities),
        rng.choice(DISTRICTS),
        rng.choice(STREETS),
        f"{rng.randint(1, 999)}号",
    ]
    if rng.random() < 0.7:
        parts += [
            rng.choice(ESTATES),
            f"{rng.randint(1, 30)}幢{rng.randint(1, 6)}单元",
            f"{rng.randint(1, 30)}0{rng.randint(1, 4)}室",
        ]
    return "".join(parts)


def random_record(rng: random.Random, form_id: str) -> dict[str, str]:
    """A plausible record: form_id plus every printed field's stored value."""
    province = rng.choice(PROVINCES)
    region = province[2] + f"{rng.randint(1, 9):02d}"
    born = _day(rng, 2008, 2019)
    r: dict[str, str] = {"form_id": form_id}
    r["name"] = person_name(rng)
    r["former_name"] = person_name(rng) if rng.random() < 0.15 else ""
    r["sex"] = rng.choice("12")
    r["birth_date"] = born.isoformat()
    r["birthplace"] = province[0] + rng.choice(province[1])
    r["native_place"] = province[0][:2] + rng.choice(province[1])[:-1]
    r["ethnicity"] = "01" if rng.random() < 0.8 else rng.choice(list(BY_CODE["ethnicity"].options))
    r["nationality"] = "CN"
    r["id_type"] = "1"
    r["id_number"] = id_number(rng, region, born)
    r["overseas_status"] = "0"
    r["health"] = rng.choice("1111112345")
    r["household_address"] = address(rng, province)
    r["household_type"] = rng.choice("12")
    r["current_address"] = r["household_address"] if rng.random() < 0.5 else address(rng, province)
    r["phone"] = mobile(rng)
    for code in ("only_child", "left_behind", "migrant_child", "orphan"):
        r[code] = "1" if rng.random() < 0.2 else "0"
    r["disability"] = "0" if rng.random() < 0.9 else rng.choice("1234567")
    r["enrolment_month"] = f"{born.year + 6 + rng.randint(0, 6)}-09"
    r["enrolment_method"] = rng.choice("111259")
    r["study_mode"] = rng.choice("1112")
    for n, relation in ((1, "1"), (2, "2")):
        g = f"guardian{n}_"
        r[g + "name"] = person_name(rng)
        r[g + "relation"] = relation if rng.random() < 0.9 else rng.choice("34567")
        r[g + "phone"] = mobile(rng)
        r[g + "id_type"] = "1"
        r[g + "id_number"] = id_number(rng, region, _day(rng, 1970, 1992))
        r[g + "is_guardian"] = "1" if rng.random() < 0.9 else "0"
        r[g + "employer"] = rng.choice(EMPLOYERS)
    return r


def edit_value(rng: random.Random, code: str, stored: str) -> str:
    """A different stored value of the same kind: one digit, one character or the option
    changed (what an outdated or tampered form shows)."""
    f = BY_CODE[code]
    if f.type in (FieldType.choice, FieldType.yes_no):
        options = list(f.options) if f.type is FieldType.choice else ["0", "1"]
        return rng.choice([o for o in options if o != stored])
    if not stored:
        return person_name(rng) if f.type is FieldType.text else "13800138000"
    positions = (
        [i for i, c in enumerate(stored) if c.isdigit()]
        if f.type is not FieldType.text
        else list(range(len(stored)))
    )
    i = rng.choice(positions)
    if f.type is FieldType.text:
        pool = GIVEN if not stored[i].isdigit() else "0123456789"
        new = rng.choice([c for c in pool if c != stored[i]])
    else:
        new = rng.choice([d for d in "0123456789" if d != stored[i]])
        if f.type in (FieldType.date, FieldType.year_month) and i in (5, 8):
            new = "1" if stored[i] == "0" else "0"  # keep month/day plausible
    return stored[:i] + new + stored[i + 1 :]


EDITABLE = [
    f.code
    for f in PRINTED_FIELDS
    if f.code
    not in ("nationality", "id_type", "overseas_status", "guardian1_id_type", "guardian2_id_type")
]
