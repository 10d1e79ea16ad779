"""The one masking rule, value by value (what fields shown together can rebuild is counted in
tests/records/test_masking.py)."""

from __future__ import annotations

import logging

import pytest

from backend.masking import (
    mask,
    mask_address,
    mask_id_number,
    mask_phone,
    mask_push_token,
    mask_registry_number,
    mask_values,
)
from backend.notify.sms import LoggingSmsSender
from backend.records.catalog import BY_CODE


def test_an_id_number_keeps_its_region_only() -> None:
    assert mask_id_number("110105194912310123") == "110105************"
    assert mask_id_number("11010519491231002X") == "110105************"
    assert mask_id_number("110105491231002") == "110105*********"  # the old 15 digits
    assert mask_id_number("E12345678") == "E1*******"  # a passport
    assert mask_id_number("H1234") == "H****"
    assert mask_id_number(None) is None
    assert mask_id_number("") == ""


def test_registry_numbers_are_masked_like_what_they_carry() -> None:
    assert mask_registry_number("G11010519491231002X") == "G110105************"
    assert mask_registry_number("J213301201503071234") == "J213301************"


def test_phones_and_addresses() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("057188886666") == "057*****6666"
    assert mask_phone("12345") == "***45"
    assert mask_phone("1234") == "****"
    assert mask_address("浙江省杭州市西湖区文三路1号2幢301室") == "浙江省杭州市****"
    assert mask_address("北京市海淀区中关村大街1号") == "北京市****"
    assert mask_address("新疆维吾尔自治区乌鲁木齐市天山区") == "新疆维吾尔自治区乌鲁木齐市****"
    assert mask_address("杭州市翠苑小区3幢") == "杭州市****"
    assert mask_address("西湖区翠苑小区3幢") == "****"  # no province or city first: all hidden
    assert mask_address("文三路1号") == "****"


def test_the_catalog_decides_what_is_masked() -> None:
    values = {
        "name": "王小明",
        "birth_date": "2018-03-07",
        "id_number": "330106201803070013",
        "phone": "13812345678",
        "guardian2_id_number": "330106198001010026",
        "current_address": "浙江省杭州市西湖区文三路1号",
        "made_up_field": "whatever",
    }
    assert mask_values(BY_CODE, values) == {
        "name": "王小明",
        "birth_date": "2018-03-07",
        "id_number": "330106************",
        "phone": "138****5678",
        "guardian2_id_number": "330106************",
        "current_address": "浙江省杭州市****",
        "made_up_field": "****",  # nobody classified it: hidden
    }
    assert mask(BY_CODE["sex"], "1") == "1"


@pytest.mark.asyncio
async def test_the_logging_sms_sender_logs_no_full_phone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender = LoggingSmsSender()
    with caplog.at_level(logging.DEBUG):
        await sender.send("13812345678", "【学籍核查】您的验证码是 123456")
    assert "13812345678" not in caplog.text
    assert "138****5678" in caplog.text
    assert "123456" in caplog.text  # the developer still reads the code off the console
    assert sender.sent == [("13812345678", "【学籍核查】您的验证码是 123456")]


def test_addresses_of_many_shapes() -> None:
    assert mask_address("贵州省贵阳市云岩区中华北路") == "贵州省贵阳市****"
    assert mask_address("广东省广州市天河区") == "广东省广州市****"
    assert mask_address("四川省甘孜藏族自治州康定市") == "四川省甘孜藏族自治州****"
    assert mask_address("内蒙古自治区锡林郭勒盟") == "内蒙古自治区锡林郭勒盟****"


def test_push_tokens_show_their_tail_and_endpoints_only_their_host() -> None:
    token = "fcm-token:" + "A1b2C3d4" * 8
    assert mask_push_token(token) == "…" + token[-6:]
    assert token[:-6] not in mask_push_token(token)
    assert mask_push_token("short-token") == "…"  # a short tail would be most of it
    endpoint = "https://user:pw@push.example.net/wpush/v2/AbCdEf0123456789"
    assert mask_push_token(endpoint) == "https://push.example.net/…"


def test_a_webhook_without_a_path_keeps_no_query_or_fragment() -> None:
    # A webhook's secret often rides in its query: the host alone is shown.
    for url in (
        "https://hooks.example.com?access_token=S3cretS3cret",
        "https://hooks.example.com#S3cretS3cret",
        "https://hooks.example.com:8443?access_token=S3cretS3cret",
    ):
        masked = mask_push_token(url)
        assert "S3cret" not in masked, masked
        assert masked.startswith("https://hooks.example.com"), masked
