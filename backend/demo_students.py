"""Deterministic demo students for the seed: realistic names and addresses, valid ID numbers,
and a few problem records of each kind."""

from __future__ import annotations

import random
from datetime import date, timedelta

from backend.records.ids import make_resident_id, registry_number_for
from backend.records.service import RecordIn

SURNAMES = "王李张刘陈杨黄赵周吴徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余"
# fmt: off
GIVEN = (
    "子涵", "浩然", "欣怡", "梓萱", "宇轩", "一诺", "雨桐", "俊熙", "诗涵", "博文",
    "思远", "可馨", "铭泽", "若曦", "嘉怡", "天佑", "语嫣", "明哲", "晨曦", "佳琪",
    "泽宇", "沐阳", "书瑶", "皓轩", "依诺", "子墨", "梦琪", "昊天", "静怡", "景行",
)
ADULT_GIVEN = (
    "建国", "海燕", "志强", "丽华", "军", "芳", "伟", "敏", "磊", "静",
    "勇", "娟", "涛", "霞", "斌", "红", "杰", "玲", "强", "燕",
)
# fmt: on
STREETS = ["文三路", "文二西路", "古墩路", "天目山路", "教工路", "学院路", "紫金港路", "留下街"]
COUNTY = "330106"
STUDENTS_PER_CLASS = 24


def _birth_date(rng: random.Random, grade: int) -> date:
    start = date(2026 - 6 - grade, 9, 1)  # children of grade g turned 6 by 31 August
    return start + timedelta(days=rng.randrange(365))


def _phone(rng: random.Random) -> str:
    return rng.choice(["138", "139", "136", "158", "187", "135"]) + f"{rng.randrange(10**8):08d}"


def demo_students(school_ids: list[int], class_ids: list[int]) -> list[RecordIn]:
    """Five classes: ids as the seed made them (school 0: classes 0–2 grades 1, 1, 3;
    school 1: classes 3–4 grades 7, 8)."""
    rng = random.Random(2026)
    grades = [1, 1, 3, 7, 8]
    schools = [school_ids[0]] * 3 + [school_ids[1]] * 2
    school_codes = {school_ids[0]: "2133010601", school_ids[1]: "2133010602"}
    records: list[RecordIn] = []
    sequence = 0
    for class_id, grade, school_id in zip(class_ids, grades, schools, strict=True):
        for _ in range(STUDENTS_PER_CLASS):
            sequence += 1
            surname = rng.choice(SURNAMES)
            sex = rng.choice(["1", "2"])
            born = _birth_date(rng, grade)
            id_number = make_resident_id(COUNTY, born, sequence % 100, sex)
            street = rng.choice(STREETS)
            address = f"浙江省杭州市西湖区{street}{rng.randrange(1, 300)}号{rng.randrange(1, 20)}幢"
            mother_surname = rng.choice(SURNAMES)
            father_born = date(
                1982 + rng.randrange(8), 1 + rng.randrange(12), 1 + rng.randrange(28)
            )
            mother_born = father_born + timedelta(days=rng.randrange(-900, 900))
            fields = {
                "name": surname + rng.choice(GIVEN),
                "sex": sex,
                "birth_date": born.isoformat(),
                "birthplace": "浙江省杭州市",
                "native_place": rng.choice(["浙江杭州", "浙江绍兴", "江苏苏州", "安徽合肥"]),
                "ethnicity": "01" if rng.random() < 0.92 else rng.choice(["03", "08", "11", "22"]),
                "nationality": "CN",
                "id_type": "1",
                "id_number": id_number,
                "overseas_status": "0",
                "health": "1",
                "household_address": address,
                "household_type": "2",
                "current_address": address + f"{rng.randrange(1, 6)}0{rng.randrange(1, 4)}室",
                "phone": _phone(rng),
                "only_child": rng.choice(["0", "1"]),
                "left_behind": "0",
                "migrant_child": "1" if rng.random() < 0.1 else "0",
                "orphan": "0",
                "disability": "0",
                "enrolment_month": f"{born.year + (7 if born.month >= 9 else 6)}-09",
                "enrolment_method": "1",
                "study_mode": "1",
                "guardian1_name": surname + rng.choice(ADULT_GIVEN),
                "guardian1_relation": "1",
                "guardian1_phone": _phone(rng),
                "guardian1_id_type": "1",
                "guardian1_id_number": make_resident_id(COUNTY, father_born, sequence % 50, "1"),
                "guardian1_is_guardian": "1",
                "guardian1_employer": rng.choice(
                    ["浙江大学", "杭州市第一人民医院", "个体经营", "西湖区某科技公司"]
                ),
                "guardian2_name": mother_surname + rng.choice(ADULT_GIVEN),
                "guardian2_relation": "2",
                "guardian2_phone": _phone(rng),
                "guardian2_id_type": "1",
                "guardian2_id_number": make_resident_id(COUNTY, mother_born, sequence % 50, "2"),
                "guardian2_is_guardian": "1",
            }
            records.append(RecordIn("", school_id, class_id, COUNTY, fields))
    _add_problems(records)
    return [
        RecordIn(
            registry_number_for(
                "1",
                r.fields["id_number"],
                school_codes[r.school_id],
                r.fields["name"],
                r.fields["birth_date"],
            ),
            r.school_id,
            r.class_id,
            r.region_code,
            r.fields,
        )
        for r in records
    ]


def _add_problems(records: list[RecordIn]) -> None:
    """Two of each kind: a wrong check digit, a birth date and a sex that disagree with the
    ID number, and the same ID number at both schools."""

    def set_field(i: int, **changes: str) -> None:
        records[i] = RecordIn(
            records[i].registry_number,
            records[i].school_id,
            records[i].class_id,
            records[i].region_code,
            {**records[i].fields, **changes},
        )

    for i in (3, 30):
        number = records[i].fields["id_number"]
        wrong = "0" if number[-1] != "0" else "1"
        set_field(i, id_number=number[:-1] + wrong)
    for i in (5, 50):
        born = date.fromisoformat(records[i].fields["birth_date"])
        set_field(i, birth_date=(born + timedelta(days=3)).isoformat())
    for i in (7, 70):
        set_field(i, sex="2" if records[i].fields["sex"] == "1" else "1")
    for i, j in ((10, 80), (12, 90)):  # school 0 and school 1
        set_field(
            j,
            id_number=records[i].fields["id_number"],
            birth_date=records[i].fields["birth_date"],
            sex=records[i].fields["sex"],
        )
