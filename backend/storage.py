"""Where uploaded photos and rendered PDFs live: a local directory (default) or S3-compatible
object storage. Both behind one small interface; blocking client calls run in a thread.

The archive (`backend/parents/archive.py`): an object of a settled campaign is copied to
`archive_prefix + key` (on S3 into the archive's storage class), the copy's sha256 checked,
and only then the hot key removed. `read_current` reads an object wherever it is now.

At rest every object is encrypted: the local store seals each one itself
(`backend/storage_crypto.py`, keys from settings, rotated by `python -m backend storage
reencrypt`); S3 is asked for server-side encryption on every write and copy.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from backend.config import Settings
from backend.storage_crypto import ObjectCipher

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
        """The hex sha256 of the object's content, the bytes `get` answers (`ObjectMissing` if
        none): the same before and after a re-encryption."""
        ...

    async def reencrypt(self, batch: int, progress: Progress) -> ReencryptResult:
        """Every object brought to the current encryption, `batch` at a time, `progress`
        called after each batch."""
        ...


@dataclass
class ReencryptResult:
    seen: int = 0
    rewritten: int = 0  # plaintext or an older key before, the active key (or SSE) now
    failed: list[str] = field(default_factory=list)


Progress = Callable[[ReencryptResult], None]


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

    def __init__(
        self, root: Path, archive_prefix: str = "archive/", cipher: ObjectCipher | None = None
    ) -> None:
        """`cipher` None: objects are written as they are (only tests of other things)."""
        self.root = root
        self.archive_prefix = archive_prefix
        self.cipher = cipher

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _name(self, key: str) -> str:
        """What an object's seal is bound to: its key, without the archive prefix (an archived
        copy is the same bytes under the prefix)."""
        return key.removeprefix(self.archive_prefix)

    def _seal(self, key: str, data: bytes) -> bytes:
        return data if self.cipher is None else self.cipher.seal(self._name(key), data)

    def _open(self, key: str, data: bytes) -> bytes:
        return data if self.cipher is None else self.cipher.open(self._name(key), data)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)

        def write() -> None:
            sealed = self._seal(key, data)  # megabytes: in the thread, not on the loop
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(path.suffix + ".part")
            temporary.write_bytes(sealed)
            temporary.replace(path)  # readers never see half a file

        await asyncio.to_thread(write)

    async def get(self, key: str) -> bytes:
        path = self._path(key)

        def read() -> bytes:
            return self._open(key, path.read_bytes())

        try:
            return await asyncio.to_thread(read)
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
        """Opened and hashed in a thread: a photo's megabytes never block the loop."""
        return await asyncio.to_thread(sha256_hex, await self.get(key))

    async def reencrypt(self, batch: int, progress: Progress) -> ReencryptResult:
        """Each file sealed with the active key, in place: written beside and renamed over the
        old one, unless the file changed meanwhile (a new upload under the same key wins)."""
        result = ReencryptResult()
        cipher = self.cipher
        if cipher is None:
            raise ValueError("this store has no storage key: nothing to encrypt with")

        def files() -> list[Path]:
            found = (p for p in self.root.rglob("*") if p.is_file())
            return sorted(p for p in found if not p.name.endswith(".part"))

        def one(path: Path) -> bool:
            key = path.relative_to(self.root).as_posix()
            before = path.stat()
            data = path.read_bytes()
            if cipher.is_current(data):
                return False
            sealed = self._seal(key, self._open(key, data))
            temporary = path.with_suffix(path.suffix + ".part")
            temporary.write_bytes(sealed)
            now = path.stat()
            if (now.st_ino, now.st_mtime_ns) != (before.st_ino, before.st_mtime_ns):
                temporary.unlink()
                return False
            temporary.replace(path)
            return True

        paths = await asyncio.to_thread(files)
        for start in range(0, len(paths), batch):
            for path in paths[start : start + batch]:
                result.seen += 1
                try:
                    result.rewritten += await asyncio.to_thread(one, path)
                except (ValueError, OSError) as error:  # ObjectTampered is a ValueError
                    result.failed.append(f"{path.relative_to(self.root)}: {error}")
            progress(result)
        return result


class S3Storage:
    """An S3-compatible bucket; every write and copy asks for server-side encryption
    (`encryption`: the `ServerSideEncryption` header, with `kms_key_id` for aws:kms)."""

    def __init__(
        self,
        bucket: str,
        client: Any,
        archive_prefix: str = "archive/",
        encryption: str = "AES256",
        kms_key_id: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.client = client
        self.archive_prefix = archive_prefix
        self.encryption = encryption
        self.kms_key_id = kms_key_id

    def _sse(self) -> dict[str, str]:
        if not self.encryption:
            return {}
        asked = {"ServerSideEncryption": self.encryption}
        if self.encryption == "aws:kms" and self.kms_key_id:
            asked["SSEKMSKeyId"] = self.kms_key_id
        return asked

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
        return cls(
            settings.s3_bucket,
            client,
            settings.archive_prefix,
            settings.s3_server_side_encryption,
            settings.s3_sse_kms_key_id,
        )

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self.client.put_object,
            Bucket=self.bucket,
            Key=check_key(key),
            Body=data,
            ContentType=content_type,
            **self._sse(),
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
                **self._sse(),
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

    async def reencrypt(self, batch: int, progress: Progress) -> ReencryptResult:
        """Objects stored without the server-side encryption asked for now (written before it
        was asked, or under another KMS key) copied onto themselves with it: the bytes never
        leave the store. `batch` objects per listed page."""
        result = ReencryptResult()
        if not self.encryption:
            raise ValueError("S3_SERVER_SIDE_ENCRYPTION is off: nothing to encrypt with")
        token: str | None = None
        while True:
            page = await asyncio.to_thread(
                self.client.list_objects_v2,
                Bucket=self.bucket,
                MaxKeys=batch,
                **({"ContinuationToken": token} if token else {}),
            )
            for item in page.get("Contents", []):
                result.seen += 1
                try:
                    result.rewritten += await self._reencrypt_one(item["Key"])
                except Exception as error:  # one object's failure is reported, the run goes on
                    result.failed.append(f"{item['Key']}: {error}")
            progress(result)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return result

    async def _reencrypt_one(self, key: str) -> bool:
        head = await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=key)
        if head.get("ServerSideEncryption") == self.encryption and (
            self.encryption != "aws:kms"
            or not self.kms_key_id
            or self.kms_key_id in str(head.get("SSEKMSKeyId", ""))
        ):
            return False
        await asyncio.to_thread(
            self.client.copy_object,
            Bucket=self.bucket,
            Key=key,
            CopySource={"Bucket": self.bucket, "Key": key},
            StorageClass=head.get("StorageClass") or "STANDARD",
            MetadataDirective="COPY",
            **self._sse(),
        )
        return True


def _absent(error: BaseException) -> bool:
    response = getattr(error, "response", None)  # botocore's ClientError
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code in {"NoSuchKey", "404", "NotFound"}


def make_storage(settings: Settings) -> Storage:
    if settings.storage == "s3":
        return S3Storage.from_settings(settings)
    cipher = ObjectCipher.from_secrets(settings.storage_keys, settings.storage_active_kid)
    return LocalStorage(settings.var_dir / "uploads", settings.archive_prefix, cipher)
