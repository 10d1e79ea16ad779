"""Where uploaded photos and rendered PDFs live: a local directory (default) or S3-compatible
object storage. Both behind one small interface; blocking client calls run in a thread.

The archive (`backend/parents/archive.py`): an object of a settled campaign is copied to
`archive_prefix + key` (on S3 into the archive's storage class), the copy's sha256 checked,
and only then the hot key removed. `read_current` reads an object wherever it is now.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from backend.config import Settings

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,199}$")


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"bad storage key {key!r}")
    return key


class ObjectMissing(FileNotFoundError):
    """No object under that key (either backend)."""


@runtime_checkable
class Storage(Protocol):
    archive_prefix: str

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes:
        """The object's bytes; `ObjectMissing` when there is none."""
        ...

    async def delete(self, key: str) -> None: ...

    async def copy_to_archive(self, key: str, storage_class: str) -> str:
        """Copy `key` to `archive_key(key)` (replacing a copy a crashed run left) and answer
        the archive key. The hot object stays."""
        ...

    async def sha256(self, key: str) -> str:
        """The hex sha256 of the object's bytes as stored (`ObjectMissing` if none)."""
        ...


def archive_key(storage: Storage, key: str) -> str:
    """Where `key` lives once archived (the same key under the archive prefix)."""
    return key if key.startswith(storage.archive_prefix) else storage.archive_prefix + key


async def read_current(storage: Storage, key: str) -> bytes:
    """The object a row names, wherever it is now: a reader that read the row just before the
    archive moved the object finds it under the archive prefix."""
    try:
        return await storage.get(key)
    except ObjectMissing:
        if key.startswith(storage.archive_prefix):
            raise
        return await storage.get(archive_key(storage, key))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalStorage:
    """Files under `root`. The archive is a folder of it: `root/archive/` may be a mount (or a
    symlink to one) on cheaper disks; on the same file system an archived file is a hard link
    (no second copy of the bytes), across file systems a copy."""

    def __init__(self, root: Path, archive_prefix: str = "archive/") -> None:
        self.root = root
        self.archive_prefix = archive_prefix

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(path.suffix + ".part")
            temporary.write_bytes(data)
            temporary.replace(path)  # readers never see half a file

        await asyncio.to_thread(write)

    async def get(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except FileNotFoundError as exc:
            raise ObjectMissing(key) from exc

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    async def copy_to_archive(self, key: str, storage_class: str) -> str:
        target = archive_key(self, key)
        source, path = self._path(key), self._path(target)

        def copy() -> None:
            if not source.exists():
                raise ObjectMissing(key)
            if path.exists() and path.samefile(source):
                return  # linked by a run that stopped before its row named the copy
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(path.suffix + ".part")
            temporary.unlink(missing_ok=True)
            try:
                os.link(source, temporary)
            except OSError:  # another file system (EXDEV), or links not allowed: copy
                with source.open("rb") as reader, temporary.open("wb") as writer:
                    shutil.copyfileobj(reader, writer)
                    writer.flush()
                    os.fsync(writer.fileno())
            temporary.replace(path)  # a reader sees the whole file or none
            # rename() between two links of one file does nothing: never leave the spare
            temporary.unlink(missing_ok=True)

        await asyncio.to_thread(copy)
        return target

    async def sha256(self, key: str) -> str:
        """Hashed in a thread as it is read: a photo's megabytes never block the loop."""
        path = self._path(key)

        def digest() -> str:
            try:
                with path.open("rb") as reader:
                    return hashlib.file_digest(reader, "sha256").hexdigest()
            except FileNotFoundError as exc:
                raise ObjectMissing(key) from exc

        return await asyncio.to_thread(digest)


class S3Storage:
    def __init__(self, bucket: str, client: Any, archive_prefix: str = "archive/") -> None:
        self.bucket = bucket
        self.client = client
        self.archive_prefix = archive_prefix

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key,
            aws_secret_access_key=settings.s3_secret_key,
        )
        return cls(settings.s3_bucket, client, settings.archive_prefix)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self.client.put_object,
            Bucket=self.bucket,
            Key=check_key(key),
            Body=data,
            ContentType=content_type,
        )

    async def get(self, key: str) -> bytes:
        try:
            response = await asyncio.to_thread(
                self.client.get_object, Bucket=self.bucket, Key=check_key(key)
            )
        except Exception as exc:
            if _absent(exc):
                raise ObjectMissing(key) from exc
            raise
        body: bytes = await asyncio.to_thread(response["Body"].read)
        return body

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=check_key(key))

    async def copy_to_archive(self, key: str, storage_class: str) -> str:
        """A server-side copy into `storage_class`, asking S3 for the copy's SHA-256."""
        target = archive_key(self, key)
        try:
            await asyncio.to_thread(
                self.client.copy_object,
                Bucket=self.bucket,
                Key=check_key(target),
                CopySource={"Bucket": self.bucket, "Key": check_key(key)},
                StorageClass=storage_class,
                MetadataDirective="COPY",
                ChecksumAlgorithm="SHA256",
            )
        except Exception as exc:
            if _absent(exc):
                raise ObjectMissing(key) from exc
            raise
        return target

    async def sha256(self, key: str) -> str:
        """The checksum S3 computed over the stored bytes when it has one for the whole object;
        otherwise (a store that keeps none, a multipart checksum) the bytes read and hashed."""
        try:
            head = await asyncio.to_thread(
                self.client.head_object,
                Bucket=self.bucket,
                Key=check_key(key),
                ChecksumMode="ENABLED",
            )
        except Exception as exc:
            if _absent(exc):
                raise ObjectMissing(key) from exc
            raise
        checksum = head.get("ChecksumSHA256")
        if isinstance(checksum, str) and "-" not in checksum:
            return base64.b64decode(checksum).hex()
        return await asyncio.to_thread(sha256_hex, await self.get(key))


def _absent(error: BaseException) -> bool:
    response = getattr(error, "response", None)  # botocore's ClientError
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code in {"NoSuchKey", "404", "NotFound"}


def make_storage(settings: Settings) -> Storage:
    if settings.storage == "s3":
        return S3Storage.from_settings(settings)
    return LocalStorage(settings.var_dir / "uploads", settings.archive_prefix)
