"""A request the schema refused, told to a person in Chinese: one message per field, keyed by
the field's path as the client sent it (`phone`, `page_size`, `outer.inner`), never the
library's English (`Object contains unknown field ...`) nor its internal names (`data`).

Litestar reports each failure as `{"key", "message", "source"}` with msgspec's message; the
kind of failure is read from that message, and the field's declared type (from the handler's
signature) supplies what a person needs to fix it: the allowed values of an enum.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec
from litestar.handlers.base import BaseRouteHandler

BODY = "body"  # the key of an error about the body as a whole

TYPE_NAMES = {
    "str": "文字",
    "int": "整数",
    "float": "数字",
    "bool": "true 或 false",
    "object": "JSON 对象",
    "array": "列表",
    "null": "空值",
    "datetime": "日期时间",
    "date": "日期",
}
# Patterns whose meaning a person knows by another name.
PATTERN_HINTS = {
    r"^\d{6}$": "应为 6 位数字",
}

_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`")
_WRONG_TYPE = re.compile(r"^Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`")
_BOUND = re.compile(r"^Expected `(?P<type>int|float|number)` (?P<op>[<>]=?) (?P<n>-?[\d.]+)")
_LENGTH = re.compile(r"^Expected `(?:str|array|object)` of length (?P<op>[<>]=?) (?P<n>\d+)")
_PATTERN = re.compile(r"^Expected `str` matching regex '(?P<pattern>.*)'$")
_ENUM = re.compile(r"^Invalid enum value")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def _wanted(name: str) -> str:
    names = [TYPE_NAMES.get(part.strip(), "") for part in name.split("|")]
    return "应为" + "或".join(n for n in names if n and n != "空值") if any(names) else "类型不正确"


def _bound(op: str, number: str) -> str:
    return {
        ">=": f"不能小于 {number}",
        ">": f"须大于 {number}",
        "<=": f"不能大于 {number}",
        "<": f"须小于 {number}",
    }[op]


def _length(op: str, number: str) -> str:
    return {
        ">=": f"长度不能少于 {number} 个字符",
        ">": f"长度须多于 {number} 个字符",
        "<=": f"长度不能超过 {number} 个字符",
        "<": f"长度须少于 {number} 个字符",
    }[op]


def _join(parent: str, name: str) -> str:
    return name if parent in ("", "data", BODY) else f"{parent}.{name}"


def _allowed(kind: Any) -> list[str] | None:
    """The values a closed-set type accepts, if `kind` is (or wraps) an enum or a Literal."""
    info = kind if isinstance(kind, msgspec.inspect.Type) else msgspec.inspect.type_info(kind)
    if isinstance(info, msgspec.inspect.EnumType):
        return [str(member.value) for member in info.cls]
    if isinstance(info, msgspec.inspect.LiteralType):
        return [str(value) for value in info.values]
    if isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            values = _allowed(member)
            if values is not None:
                return values
    if isinstance(info, msgspec.inspect.Metadata):
        return _allowed(info.type)
    return None


def _field_type(kind: Any, path: str) -> Any:
    """The declared type at a dotted path inside a body type (None if it cannot be followed)."""
    try:
        info: Any = msgspec.inspect.type_info(kind)
    except (TypeError, ValueError):
        return None
    for part in (p for p in re.split(r"[.\[\]]+", path) if p):
        while isinstance(info, msgspec.inspect.Metadata | msgspec.inspect.UnionType):
            if isinstance(info, msgspec.inspect.Metadata):
                info = info.type
            else:
                info = next(
                    (t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)), None
                )
        if isinstance(info, msgspec.inspect.StructType | msgspec.inspect.DataclassType):
            info = next((f.type for f in info.fields if f.encode_name == part), None)
        elif isinstance(info, msgspec.inspect.ListType) and part.isdigit():
            info = info.item_type
        else:
            return None
        if info is None:
            return None
    return info


def declared_type(handler: BaseRouteHandler | None, source: str, key: str) -> Any:
    """The type the handler declared for a query/path parameter or a body field (`key` ""
    or `body`: the body's own type)."""
    if handler is None:
        return None
    parameters = handler.parsed_fn_signature.parameters
    if source == "body":
        data = parameters.get("data")
        if data is None:
            return None
        return data.annotation if key in ("", BODY) else _field_type(data.annotation, key)
    parameter = parameters.get(key)
    return parameter.annotation if parameter is not None else None


def required_error(items: Any, handler: BaseRouteHandler | None) -> tuple[str, str, str] | None:
    """(field, code, message) when the body lacks a field its type names in `REQUIRED` (a
    ClassVar of `{field: (code, message)}`): a missing field that deserves its own words,
    such as the password a first sign-up sets."""
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or item.get("source") != "body":
            continue
        match = _MISSING.match(str(item.get("message", "")))
        if match is None:
            continue
        parent = str(item.get("key") or BODY)
        kind = declared_type(handler, "body", "" if parent == "data" else parent)
        cls = getattr(kind, "cls", kind)
        explained = getattr(cls, "REQUIRED", {}).get(match.group("name"))
        if explained is not None:
            code, message = explained
            return _join(parent, match.group("name")), code, message
    return None


def _enum_message(values: list[str]) -> str:
    return "可选值：" + "、".join(values)


def field_error(message: str, key: str, kind: Callable[[], Any]) -> tuple[str, str]:
    """(the field's path, a Chinese message) for one of Litestar's validation items."""
    if key == "data":
        key = BODY
    if at := _AT.search(message):  # a __post_init__ names its own field, as msgspec does
        message, key = message[: at.start()], at.group("path").lstrip(".") or key
    if match := _MISSING.match(message):
        return _join(key, match.group("name")), "缺少必填项"
    if match := _UNKNOWN.match(message):
        return _join(key, match.group("name")), "不支持此字段"
    if _ENUM.match(message):
        values = _allowed(kind()) if kind() is not None else None
        return key, _enum_message(values) if values else "取值不在可选范围内"
    if match := _WRONG_TYPE.match(message):
        if key == BODY and match.group("want") == "object":
            return key, "提交的内容应为 JSON 对象"
        return key, _wanted(match.group("want"))
    if match := _BOUND.match(message):
        return key, _bound(match.group("op"), match.group("n"))
    if match := _LENGTH.match(message):
        return key, _length(match.group("op"), match.group("n"))
    if match := _PATTERN.match(message):
        pattern = match.group("pattern").replace("\\\\", "\\")  # msgspec doubles backslashes
        return key, PATTERN_HINTS.get(pattern, "格式不正确")
    if message.startswith("Invalid RFC3339 encoded datetime"):
        return key, "时间格式不正确，例如 2026-03-01T08:00:00+08:00"
    if "timezone" in message:
        return key, "时间须带时区，例如 2026-03-01T08:00:00+08:00"
    if _CJK.search(message):  # our own checks already speak Chinese
        return key, message
    return key, "取值无效"


def field_errors(items: Any, handler: BaseRouteHandler | None) -> dict[str, str]:
    errors: dict[str, str] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        source = str(item.get("source") or "body")
        key = str(item.get("key") or BODY)

        def kind(source: str = source, key: str = key) -> Any:
            return declared_type(handler, source, key)

        path, text = field_error(str(item.get("message", "")), key, kind)
        errors.setdefault(path, text)
    return errors
