from __future__ import annotations

import pytest

from backend.ocr import (
    ForgedFormToken,
    FormTokenError,
    MalformedFormToken,
    form_link,
    sign_form_token,
    token_from_code,
    verify_form_token,
)

KEY = b"k" * 32


def test_round_trip() -> None:
    token = sign_form_token("123e4567-e89b-12d3-a456-426614174000", KEY)
    assert token.startswith("F1.123e4567-")
    assert len(token) <= 62  # fits the version-4 QR
    assert verify_form_token(token, KEY) == "123e4567-e89b-12d3-a456-426614174000"


def test_form_id_may_contain_dots() -> None:
    assert verify_form_token(sign_form_token("a.b.c", KEY), KEY) == "a.b.c"


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace("F1.42.", "F1.43."),  # another form's id, same signature
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature edited
    ],
)
def test_edited_token_is_forged(edit: object) -> None:
    token = sign_form_token("42", KEY)
    with pytest.raises(ForgedFormToken):
        verify_form_token(edit(token), KEY)  # type: ignore[operator]


def test_other_key_is_forged() -> None:
    with pytest.raises(ForgedFormToken):
        verify_form_token(sign_form_token("42", b"another key"), KEY)


@pytest.mark.parametrize(
    "text", ["", "hello", "F2.42.AAAAAAAAAAAAAAAA", "F1.42.short", "F1..AAAAAAAAAAAAAAAA"]
)
def test_malformed(text: str) -> None:
    with pytest.raises(MalformedFormToken) as caught:
        verify_form_token(text, KEY)
    assert isinstance(caught.value, FormTokenError)


@pytest.mark.parametrize("form_id", ["", "has space", "x" * 41, "中文"])
def test_bad_form_id(form_id: str) -> None:
    with pytest.raises(ValueError, match="form_id"):
        sign_form_token(form_id, KEY)


LINK_TOKEN = sign_form_token("ABCDEFGHJKMN", KEY)


@pytest.mark.parametrize(
    "code",
    [
        f"https://xj.example.edu.cn/m/f/{LINK_TOKEN}",
        f"https://xj.example.edu.cn/m/f/{LINK_TOKEN}/",
        f"http://127.0.0.1:8000/m/f/{LINK_TOKEN}?from=singlemessage&isappinstalled=0",
        f"https://another.host/registry/m/f/{LINK_TOKEN}#top",
        f"HTTPS://XJ.EXAMPLE.EDU.CN/m/f/{LINK_TOKEN}",
        f"  {LINK_TOKEN}\n",
    ],
)
def test_the_link_and_the_bare_token_both_read(code: str) -> None:
    assert token_from_code(code) == LINK_TOKEN
    assert verify_form_token(code, KEY) == "ABCDEFGHJKMN"


def test_the_link_puts_the_token_under_m_f() -> None:
    assert form_link("https://xj.example.edu.cn/", LINK_TOKEN) == (
        f"https://xj.example.edu.cn/m/f/{LINK_TOKEN}"
    )


@pytest.mark.parametrize(
    "code",
    [
        f"https://xj.example.edu.cn/x/{LINK_TOKEN}",  # not a form link
        f"https://xj.example.edu.cn/m/f/{LINK_TOKEN}/extra",
        f"ftp://xj.example.edu.cn/m/f/{LINK_TOKEN}",
        "https://xj.example.edu.cn/m/f/",
    ],
)
def test_other_links_are_malformed(code: str) -> None:
    with pytest.raises(MalformedFormToken):
        verify_form_token(code, KEY)


def test_a_link_to_a_forged_token_is_forged() -> None:
    edited = LINK_TOKEN[:-1] + ("A" if LINK_TOKEN[-1] != "A" else "B")
    with pytest.raises(ForgedFormToken):
        verify_form_token(f"https://xj.example.edu.cn/m/f/{edited}", KEY)
