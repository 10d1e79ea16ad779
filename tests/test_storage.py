"""Both storage backends, the S3 one against a real local S3-compatible server (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from backend.config import Settings
from backend.storage import LocalStorage, S3Storage, Storage, make_storage


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_url: str, settings: Settings) -> Storage:
    config = settings.with_(
        storage="s3",
        s3_endpoint_url=s3_url,
        s3_bucket="forms-test",
        s3_access_key="test",
        s3_secret_key="test",
    )
    boto3.client(
        "s3",
        endpoint_url=s3_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket="forms-test")
    storage = make_storage(config)
    assert isinstance(storage, S3Storage)
    return storage


@pytest.fixture
def local(tmp_path: Path) -> Storage:
    return LocalStorage(tmp_path)


@pytest.mark.parametrize("backend", ["local", "s3"])
async def test_put_get_delete(backend: str, request: pytest.FixtureRequest) -> None:
    storage: Storage = request.getfixturevalue(backend)
    await storage.put("photos/1/2/abc.jpg", b"\xff\xd8jpeg-bytes", "image/jpeg")

    assert await storage.get("photos/1/2/abc.jpg") == b"\xff\xd8jpeg-bytes"
    await storage.delete("photos/1/2/abc.jpg")
    with pytest.raises(Exception):  # noqa: B017, PT011  (FileNotFoundError or NoSuchKey)
        await storage.get("photos/1/2/abc.jpg")


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a/../../b", ""])
async def test_keys_cannot_escape(local: Storage, key: str) -> None:
    with pytest.raises(ValueError, match="bad storage key"):
        await local.put(key, b"x", "text/plain")
