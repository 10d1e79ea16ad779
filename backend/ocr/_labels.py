"""Labels read off a form, matched to catalog fields by the names systems print for them,
and column captions to the part they play (the label, the printed value, the correction)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from difflib import SequenceMatcher
from typing import Literal

Role = Literal["number", "label", "value", "correction"]

# Everything but letters, digits and CJK: brackets, colons, stars, spaces.
_NOISE = re.compile(r"[^0-9A-Za-z\u4e00-\u9fff]+")
# A caption that names the correction column, checked before the others: 正确信息 and
# 修改后内容 contain 信息 and 内容 too.
_ROLE_WORDS: tuple[tuple[Role, tuple[str, ...]], ...] = (
    ("correction", ("更正", "修改", "正确", "修正", "变更", "有误", "纠正")),
    ("number", ("序号", "编号")),
    ("label", ("项目", "信息项", "字段", "名称", "类别")),
    ("value", ("信息", "内容", "登记", "系统", "原")),
)
SIGNATURE_WORDS = ("签名", "签字", "签章", "签")
DATE_WORDS = ("日期", "年月日", "时间")
MIN_SCORE = 0.75  # a label that matches no name this well is not a field's
MIN_LEAD = 0.06  # … nor one that matches another field's name almost as well


def clean(text: str) -> str:
    return _NOISE.sub("", unicodedata.normalize("NFKC", text or ""))


def role_of(caption: str) -> Role | None:
    text = clean(caption)
    if not text:
        return None
    for role, words in _ROLE_WORDS:
        if any(w in text for w in words):
            return role
    return None


class LabelMatcher:
    """Catalog code for a label as read, tolerating a misread character."""

    def __init__(self, names: Mapping[str, tuple[str, ...]]) -> None:
        self._exact: dict[str, str] = {}
        self._all: list[tuple[str, str]] = []
        for code, labels in names.items():
            for label in labels:
                key = clean(label)
                self._exact.setdefault(key, code)
                self._all.append((key, code))

    def match(self, text: str) -> tuple[str | None, float]:
        key = clean(text)
        if len(key) < 2:
            return None, 0.0
        if key in self._exact:
            return self._exact[key], 1.0
        best: dict[str, float] = {}
        for name, code in self._all:
            if abs(len(name) - len(key)) > max(2, len(key) // 3):
                continue
            score = SequenceMatcher(None, key, name, autojunk=False).ratio()
            if score > best.get(code, 0.0):
                best[code] = score
        if not best:
            return None, 0.0
        ranked = sorted(best.items(), key=lambda kv: kv[1], reverse=True)
        code, score = ranked[0]
        runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
        if score >= MIN_SCORE and score - runner_up >= MIN_LEAD:
            return code, score
        return None, score
