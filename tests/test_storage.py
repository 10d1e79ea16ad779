"""Both storage backends, the S3 one against a real local S3-compatible server (moto)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

import backend.__main__ as cli
from backend.config import Settings, settings_from_env
from backend.storage import LocalStorage, S3Storage, Storage, make_storage
from backend.storage_crypto import ObjectTampered


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


# --- Encryption at rest (backend/storage_crypto.py) ---

JPEG = b"\xff\xd8\xff\xe0" + b"a child's face, in pixels " * 40
KEY_A = "a" * 40
KEY_B = "b" * 40


def sealed_store(settings: Settings, root: Path, keys: str) -> LocalStorage:
    """The embedded default's store under `root`, with STORAGE_KEY=`keys` (the first active)."""
    pairs = dict(pair.split(":") for pair in keys.split(","))
    made = make_storage(
        settings.with_(var_dir=root, storage_keys=pairs, storage_active_kid=next(iter(pairs)))
    )
    assert isinstance(made, LocalStorage)
    return made


async def test_the_default_store_keeps_no_plaintext_on_disk(
    settings: Settings, tmp_path: Path
) -> None:
    storage = sealed_store(settings, tmp_path, f"ka:{KEY_A}")
    await storage.put("photos/1/2/abc.jpg", JPEG, "image/jpeg")

    on_disk = (tmp_path / "uploads" / "photos/1/2/abc.jpg").read_bytes()
    assert b"\xff\xd8" not in on_disk[:16]
    assert b"face" not in on_disk
    assert await storage.get("photos/1/2/abc.jpg") == JPEG
    assert await storage.sha256("photos/1/2/abc.jpg") == hashlib.sha256(JPEG).hexdigest()


async def test_the_embedded_default_generates_its_storage_key(tmp_path: Path) -> None:
    settings = settings_from_env({"VAR_DIR": str(tmp_path)})
    assert settings.storage_active_kid == "local1"
    assert (tmp_path / "storage-dev.key").stat().st_mode & 0o077 == 0
    again = settings_from_env({"VAR_DIR": str(tmp_path)})
    assert again.storage_keys == settings.storage_keys  # objects survive a restart


async def test_an_archived_copy_opens_under_its_new_key(settings: Settings, tmp_path: Path) -> None:
    storage = sealed_store(settings, tmp_path, f"ka:{KEY_A}")
    await storage.put("evidence/7.jpg", JPEG, "image/jpeg")
    target = await storage.copy_to_archive("evidence/7.jpg", "STANDARD_IA")

    assert await storage.get(target) == JPEG
    assert await storage.sha256(target) == await storage.sha256("evidence/7.jpg")


@pytest.mark.parametrize("damage", ["flipped-byte", "moved-to-another-key", "key-dropped"])
async def test_a_tampered_object_is_refused(
    settings: Settings, tmp_path: Path, damage: str
) -> None:
    storage = sealed_store(settings, tmp_path, f"ka:{KEY_A}")
    await storage.put("photos/1/2/abc.jpg", JPEG, "image/jpeg")
    path = tmp_path / "uploads" / "photos/1/2/abc.jpg"
    key = "photos/1/2/abc.jpg"
    if damage == "flipped-byte":
        data = bytearray(path.read_bytes())
        data[-20] ^= 1
        path.write_bytes(bytes(data))
    elif damage == "moved-to-another-key":  # another student's photo swapped in on disk
        key = "photos/1/3/abc.jpg"
        (tmp_path / "uploads" / "photos/1/3").mkdir(parents=True)
        path.rename(tmp_path / "uploads" / key)
    else:
        storage = sealed_store(settings, tmp_path, f"kb:{KEY_B}")

    with pytest.raises(ObjectTampered):
        await storage.get(key)


async def test_keys_rotate_and_reencrypt_moves_every_object_to_the_new_one(
    settings: Settings, tmp_path: Path
) -> None:
    old = sealed_store(settings, tmp_path, f"ka:{KEY_A}")
    for n in range(5):
        await old.put(f"photos/1/{n}.jpg", JPEG + bytes([n]), "image/jpeg")
    legacy = tmp_path / "uploads" / "forms/9.pdf"  # written before encryption existed
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"%PDF-1.4 class roll")

    rotated = sealed_store(settings, tmp_path, f"kb:{KEY_B},ka:{KEY_A}")
    assert await rotated.get("photos/1/3.jpg") == JPEG + b"\x03"  # old key still listed
    assert await rotated.get("forms/9.pdf") == b"%PDF-1.4 class roll"  # plaintext still read
    batches: list[tuple[int, int]] = []
    result = await rotated.reencrypt(2, lambda done: batches.append((done.seen, done.rewritten)))

    assert (result.seen, result.rewritten, result.failed) == (6, 6, [])
    assert batches == [(2, 2), (4, 4), (6, 6)]
    assert b"%PDF" not in legacy.read_bytes()
    only_new = sealed_store(settings, tmp_path, f"kb:{KEY_B}")  # the old key retired
    assert await only_new.get("photos/1/3.jpg") == JPEG + b"\x03"
    assert await only_new.get("forms/9.pdf") == b"%PDF-1.4 class roll"
    again = await only_new.reencrypt(100, lambda done: None)
    assert (again.seen, again.rewritten) == (6, 0)


async def test_the_reencrypt_command_prints_its_progress(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    config = settings.with_(var_dir=tmp_path, storage_keys={"ka": KEY_A}, storage_active_kid="ka")
    (tmp_path / "uploads" / "photos").mkdir(parents=True)
    for n in range(3):
        (tmp_path / "uploads" / f"photos/{n}.jpg").write_bytes(JPEG)
    monkeypatch.setattr(cli, "get_settings", lambda: config)

    assert await cli.storage_reencrypt(batch=2) == 0

    printed = capsys.readouterr().out
    assert "storage reencrypt: 2 objects seen, 2 re-encrypted, 0 failed" in printed
    assert "storage reencrypt done: 3 of 3 objects re-encrypted" in printed
    assert all(JPEG not in p.read_bytes() for p in (tmp_path / "uploads/photos").iterdir())


async def test_s3_is_asked_for_server_side_encryption(s3: Storage) -> None:
    assert isinstance(s3, S3Storage)
    await s3.put("photos/1/2/abc.jpg", JPEG, "image/jpeg")
    head = s3.client.head_object(Bucket=s3.bucket, Key="photos/1/2/abc.jpg")
    assert head["ServerSideEncryption"] == "AES256"
    target = await s3.copy_to_archive("photos/1/2/abc.jpg", "STANDARD_IA")
    assert s3.client.head_object(Bucket=s3.bucket, Key=target)["ServerSideEncryption"] == "AES256"
    assert await s3.get(target) == JPEG


async def test_s3_reencrypt_copies_unencrypted_objects_onto_themselves(s3: Storage) -> None:
    assert isinstance(s3, S3Storage)
    for n in range(3):  # written before the service asked for encryption
        s3.client.put_object(Bucket=s3.bucket, Key=f"old/{n}.jpg", Body=JPEG)
    await s3.put("photos/new.jpg", JPEG, "image/jpeg")

    result = await s3.reencrypt(2, lambda done: None)

    # the bucket also holds the other tests' objects, all written with encryption
    assert (result.rewritten, result.failed) == (3, [])
    assert result.seen >= 4
    for n in range(3):
        head = s3.client.head_object(Bucket=s3.bucket, Key=f"old/{n}.jpg")
        assert head["ServerSideEncryption"] == "AES256"
        assert await s3.get(f"old/{n}.jpg") == JPEG
