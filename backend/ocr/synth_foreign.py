"""Synthetic forms printed by *other* systems (no QR code, no corner squares), for tests
and the benchmark: three layouts with their own titles, label wording, column order and
footers. Render one, write on it, then photograph it with `synth.photograph`::

    page, drawn = render(LAYOUTS[0], printed_values, "某某小学")
    page = page.convert("RGB")
    write(page, drawn.corrections["name"], rng, "blue", 3)
    signature(page, drawn.signature, rng, "black")
    jpeg = photograph(print_page(page), rng)

- `province`: a province's own system. 序号 | 信息项目 | 学籍系统登记信息 | 正确信息, one field
  per row, its own labels (公民身份号码, 户籍地址, 监护人姓名 …); the signature and date on
  underlines below the table.
- `two_per_row`: two fields per row, 项目 | 内容 | 修改 twice, an address row spanning the
  width; the signature and date in the table's last row.
- `school`: a school's spreadsheet print-out. 项目 | 登记信息, no correction column,
  身份证号 / 户口所在地 / 家长姓名 / 家长电话.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ._fonts import find_font
from ._layout import build_layout
from .synth import Ink, _pen, _scribble_text

DPI = 300
PAGE = (2480, 3508)  # A4 at 300 dpi


@dataclass(frozen=True)
class Spec:
    """One foreign layout: what it prints and how."""

    name: str
    title: str
    captions: tuple[str, ...]  # one group's column captions, left to right
    roles: tuple[str, ...]  # each column's role: number, label, value, correction
    widths_mm: tuple[float, ...]  # each column's width
    per_row: int
    fields: tuple[tuple[str, str], ...]  # (catalog code, the label this system prints)
    footer: str  # "lines" (underlines below the table) or "row" (the table's last row)
    row_mm: float = 9.0
    wide: tuple[str, ...] = ()  # codes whose value spans the row (two_per_row only)


LAYOUTS: tuple[Spec, ...] = (
    Spec(
        "province",
        "浙江省中小学生学籍信息核对表",
        ("序号", "信息项目", "学籍系统登记信息", "正确信息（有误时填写）"),
        ("number", "label", "value", "correction"),
        (12.0, 36.0, 72.0, 60.0),
        1,
        (
            ("name", "学生姓名"),
            ("sex", "性别"),
            ("birth_date", "出生日期"),
            ("ethnicity", "民族"),
            ("native_place", "籍贯"),
            ("id_number", "公民身份号码"),
            ("health", "健康状况"),
            ("household_address", "户籍地址"),
            ("household_type", "户籍性质"),
            ("current_address", "现居住地址"),
            ("phone", "手机号码"),
            ("only_child", "独生子女"),
            ("left_behind", "留守儿童"),
            ("enrolment_month", "入学年月"),
            ("study_mode", "就读方式"),
            ("guardian1_name", "监护人姓名"),
            ("guardian1_relation", "监护人关系"),
            ("guardian1_phone", "监护人手机号码"),
            ("guardian1_id_number", "监护人公民身份号码"),
            ("guardian1_employer", "监护人工作单位"),
            ("guardian2_name", "监护人2姓名"),
            ("guardian2_phone", "监护人2手机号码"),
        ),
        "lines",
        row_mm=9.5,
    ),
    Spec(
        "two_per_row",
        "学生学籍基础信息确认单",
        ("项目", "内容", "修改"),
        ("label", "value", "correction"),
        (24.0, 40.0, 26.0),
        2,
        (
            ("name", "姓名"),
            ("former_name", "曾用名"),
            ("sex", "性别"),
            ("birth_date", "出生日期"),
            ("birthplace", "出生地"),
            ("native_place", "籍贯"),
            ("ethnicity", "民族"),
            ("id_type", "证件类型"),
            ("id_number", "身份证件号码"),
            ("health", "健康状况"),
            ("household_address", "户口所在地"),
            ("household_type", "户口性质"),
            ("phone", "联系电话"),
            ("current_address", "现住址"),
            ("only_child", "是否独生子女"),
            ("left_behind", "是否留守儿童"),
            ("migrant_child", "随迁子女"),
            ("orphan", "是否孤儿"),
            ("disability", "残疾类型"),
            ("enrolment_month", "入学年月"),
            ("enrolment_method", "入学方式"),
            ("study_mode", "就读方式"),
            ("guardian1_name", "家长1姓名"),
            ("guardian1_relation", "家长1关系"),
            ("guardian1_phone", "家长1电话"),
            ("guardian1_id_number", "家长1身份证号"),
            ("guardian2_name", "家长2姓名"),
            ("guardian2_relation", "家长2关系"),
            ("guardian2_phone", "家长2电话"),
            ("guardian2_id_number", "家长2身份证号"),
        ),
        "row",
        row_mm=10.0,
        wide=("household_address", "current_address"),
    ),
    Spec(
        "school",
        "学籍信息家长核对回执",
        ("项目", "登记信息"),
        ("label", "value"),
        (50.0, 120.0),
        1,
        (
            ("name", "姓名"),
            ("sex", "性别"),
            ("birth_date", "出生年月日"),
            ("ethnicity", "民族"),
            ("id_number", "身份证号"),
            ("household_address", "户口所在地"),
            ("current_address", "家庭住址"),
            ("phone", "联系电话"),
            ("guardian1_name", "家长姓名"),
            ("guardian1_phone", "家长电话"),
            ("guardian1_employer", "家长工作单位"),
            ("guardian2_name", "家庭成员2姓名"),
            ("guardian2_phone", "家庭成员2联系电话"),
        ),
        "lines",
        row_mm=11.0,
    ),
)
BY_NAME = {s.name: s for s in LAYOUTS}


def px(mm: float) -> int:
    return round(mm * DPI / 25.4)


# What the handwriting helpers of `synth` need of a layout: its scale.
_SCALE = build_layout((), dpi=DPI)


Box = tuple[int, int, int, int]


@dataclass
class Drawn:
    """Where the handwriting goes on a rendered sheet (300-dpi pixels)."""

    corrections: dict[str, Box] = field(default_factory=dict)
    signature: Box = (0, 0, 0, 0)
    date: Box = (0, 0, 0, 0)


def _font(size_mm: float) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(find_font(), px(size_mm))


def _fit(draw: ImageDraw.ImageDraw, box: Box, text: str, size_mm: float, centre: bool) -> None:
    """Text in a box, shrunk until it fits on up to two lines."""
    x0, y0, x1, y1 = box
    pad = px(1.2)
    room = x1 - x0 - 2 * pad
    for size in (size_mm, size_mm * 0.85, size_mm * 0.72, size_mm * 0.62):
        f = _font(size)
        if f.getlength(text) <= room:
            lines = [text]
            break
        cut = len(text)
        while cut > 1 and f.getlength(text[:cut]) > room:
            cut -= 1
        if f.getlength(text[cut:]) <= room and 2 * f.size * 1.2 <= y1 - y0:
            lines = [text[:cut], text[cut:]]
            break
    else:
        lines = [text]
    step = f.size * 1.2
    top = (y0 + y1) / 2 - step * (len(lines) - 1) / 2
    for i, line in enumerate(lines):
        x = (x0 + x1) / 2 if centre else x0 + pad
        draw.text((x, top + i * step), line, font=f, fill=0, anchor="mm" if centre else "lm")


def render(spec: Spec, values: dict[str, str], school: str) -> tuple[Image.Image, Drawn]:
    page = Image.new("L", PAGE, 255)
    draw = ImageDraw.Draw(page)
    rule = px(0.3)
    left_mm = (210 - spec.per_row * sum(spec.widths_mm)) / 2
    draw.text((PAGE[0] / 2, px(22)), spec.title, font=_font(6.0), fill=0, anchor="mm")
    draw.text((px(left_mm), px(33)), f"学校：{school}", font=_font(3.4), fill=0, anchor="lm")
    top = px(40)
    row_h = px(spec.row_mm)
    drawn = Drawn()

    def cell(x0: int, y0: int, x1: int, y1: int, fill: int | None = None) -> Box:
        draw.rectangle((x0, y0, x1, y1), outline=0, width=rule, fill=fill)
        return (x0, y0, x1, y1)

    # Column edges of one group, in pixels.
    edges = [px(left_mm)]
    for _ in range(spec.per_row):
        for w in spec.widths_mm:
            edges.append(edges[-1] + px(w))
    right = edges[-1]
    y = top
    for g in range(spec.per_row):
        for c, caption in enumerate(spec.captions):
            i = g * len(spec.captions) + c
            box = cell(edges[i], y, edges[i + 1], y + row_h, fill=225)
            _fit(draw, box, caption, 3.2, centre=True)
    y += row_h
    rows: list[list[tuple[str, str]]] = []
    for code, label in spec.fields:
        if code in spec.wide or spec.per_row == 1:
            rows.append([(code, label)])
        elif rows and len(rows[-1]) < spec.per_row and rows[-1][0][0] not in spec.wide:
            rows[-1].append((code, label))
        else:
            rows.append([(code, label)])
    n = len(spec.captions)
    number = 0
    for row in rows:
        wide = row[0][0] in spec.wide
        for g, (code, label) in enumerate(row):
            base = g * n
            for c, role in enumerate(spec.roles):
                x0, x1 = edges[base + c], edges[base + c + 1]
                if wide and role == "value":
                    # The value spans everything up to the last group's correction column.
                    x1 = edges[-2] if spec.roles[-1] == "correction" else edges[-1]
                if wide and role == "correction":
                    x0 = edges[-2]
                    x1 = edges[-1]
                box = cell(x0, y, x1, y + row_h, fill=240 if role == "label" else None)
                if role == "number":
                    number += 1
                    _fit(draw, box, str(number), 3.0, centre=True)
                elif role == "label":
                    _fit(draw, box, label, 3.2, centre=True)
                elif role == "value":
                    if values.get(code):
                        _fit(draw, box, values[code], 3.4, centre=False)
                else:
                    drawn.corrections[code] = box
                if wide and role == "value":
                    break
            if wide and spec.roles[-1] == "correction":
                cell(edges[-2], y, edges[-1], y + row_h)
                drawn.corrections[code] = (edges[-2], y, edges[-1], y + row_h)
        if len(row) < spec.per_row and not wide:
            for i in range(len(row) * n, spec.per_row * n):
                cell(edges[i], y, edges[i + 1], y + row_h)
        y += row_h
    if spec.footer == "row":
        h = px(16)
        mid = (edges[0] + right) // 2
        label_w = px(24)
        box = cell(edges[0], y, edges[0] + label_w, y + h, fill=240)
        _fit(draw, box, "家长签名", 3.2, centre=True)
        drawn.signature = cell(edges[0] + label_w, y, mid, y + h)
        box = cell(mid, y, mid + label_w, y + h, fill=240)
        _fit(draw, box, "签名日期", 3.2, centre=True)
        drawn.date = cell(mid + label_w, y, right, y + h)
    else:
        y += px(14)
        f = _font(3.6)
        label = "监护人签字：" if spec.name == "province" else "家长签名："
        x = edges[0]
        draw.text((x, y), label, font=f, fill=0, anchor="ls")
        x += int(f.getlength(label)) + px(1)
        draw.line((x, y + px(1), x + px(55), y + px(1)), fill=0, width=rule)
        drawn.signature = (x, y - px(12), x + px(55), y)
        x += px(65)
        draw.text((x, y), "日期：", font=f, fill=0, anchor="ls")
        x += int(f.getlength("日期：")) + px(1)
        draw.line((x, y + px(1), x + px(40), y + px(1)), fill=0, width=rule)
        drawn.date = (x, y - px(10), x + px(40), y)
    page.info["dpi"] = (DPI, DPI)
    return page, drawn


def write(page: Image.Image, box: Box, rng: np.random.Generator, ink: Ink, chars: int) -> None:
    draw = ImageDraw.Draw(page)
    fill, width = _pen(rng, _SCALE, ink)
    _scribble_text(draw, rng, _SCALE, box, chars, narrow=False, ink=fill, width=width)


def faint(page: Image.Image, box: Box, rng: np.random.Generator) -> None:
    draw = ImageDraw.Draw(page)
    v = int(rng.integers(110, 150))
    _scribble_text(
        draw,
        rng,
        _SCALE,
        box,
        1,
        narrow=False,
        ink=(v, v, v),
        width=max(1, px(0.25)),
    )


def signature(page: Image.Image, box: Box, rng: np.random.Generator, ink: Ink) -> None:
    draw = ImageDraw.Draw(page)
    fill, width = _pen(rng, _SCALE, ink)
    x0, y0, x1, y1 = box
    m = px(2)
    n = int(rng.integers(6, 12))
    xs = np.linspace(x0 + m, x0 + m + (x1 - x0 - 2 * m) * rng.uniform(0.5, 0.9), n)
    ys = rng.uniform(y0 + m, y1 - m, n)
    draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=fill, width=width)
