"""Checking and cleaning an uploaded photo: pure image code, no web, no database.

Accepted by content, never by name: JPEG, PNG, WebP and HEIC (iPhones). The stored copy is
upright (EXIF orientation applied) and re-encoded as JPEG with no EXIF, so no GPS position
of a family's home is kept.
"""

from __future__ import annotations

import hashlib
import io
import threading
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 15 * 1024 * 1024
MAX_PIXELS = 50_000_000
FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
JPEG_QUALITY = 90
# A 50-MP photo takes ≈150 MB to decode: at most two at once per process.
_DECODES = threading.BoundedSemaphore(2)
_heif_registered = False
TOO_MANY_PIXELS = "照片像素过多（最多 5000 万像素），请用手机相机的常规设置拍摄"


class PhotoRejected(ValueError):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class CleanPhoto:
    jpeg: bytes
    width: int
    height: int
    content_hash: str  # sha256 of the bytes received
    source_format: str


def _register_heif() -> None:
    global _heif_registered
    if not _heif_registered:
        from pillow_heif import register_heif_opener

        register_heif_opener()
        _heif_registered = True


def clean_photo(data: bytes) -> CleanPhoto:
    if len(data) > MAX_BYTES:
        raise PhotoRejected("photo_too_large", "照片不能超过 15 MB，请压缩后再上传", 413)
    if not data:
        raise PhotoRejected("photo_empty", "没有收到照片内容")
    _register_heif()
    with _DECODES, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=FORMATS)
        except (
            UnidentifiedImageError,
            Image.DecompressionBombError,
            Image.DecompressionBombWarning,
        ) as exc:
            if isinstance(exc, UnidentifiedImageError):
                raise PhotoRejected(
                    "photo_unsupported", "只接受 JPEG、PNG、WebP 或 HEIC 格式的照片"
                ) from exc
            raise PhotoRejected(
                "photo_too_many_pixels", "照片像素过多（最多 5000 万像素）"
            ) from exc
        source_format = image.format or "?"
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise PhotoRejected("photo_too_many_pixels", TOO_MANY_PIXELS)
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise PhotoRejected(
                "photo_truncated", "照片文件不完整或已损坏，请重新拍摄上传"
            ) from exc
        upright = ImageOps.exif_transpose(image)
        rgb = upright.convert("RGB")
        out = io.BytesIO()
        rgb.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return CleanPhoto(
        out.getvalue(), rgb.width, rgb.height, hashlib.sha256(data).hexdigest(), source_format
    )
