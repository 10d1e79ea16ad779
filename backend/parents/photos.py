"""Checking and cleaning an uploaded photo: pure image code, no web, no database.

Accepted by content, never by name: JPEG, PNG, WebP and HEIC (iPhones). The stored copy is
upright (EXIF orientation applied) and re-encoded as JPEG of the pixels only: no EXIF (so no
GPS position of a family's home), no comment, no XMP, ICC or Photoshop block, nothing from a
PNG's text chunks or a WebP's metadata — so a JPEG/HTML polyglot cannot be served back.
"""

from __future__ import annotations

import hashlib
import io
import struct
import threading
import warnings
import zlib
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 15 * 1024 * 1024
PHOTO_TOO_LARGE = f"照片不能超过 {MAX_BYTES // 1024 // 1024} MB，请压缩后再上传"
MAX_PIXELS = 50_000_000
FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
JPEG_QUALITY = 90
# A 50-MP photo takes ≈150 MB to decode: at most two at once per process.
_DECODES = threading.BoundedSemaphore(2)
_heif_registered = False
TOO_MANY_PIXELS = "照片像素过多（最多 5000 万像素），请用手机相机的常规设置拍摄"
DAMAGED = "照片文件已损坏或格式异常，请用手机相机重新拍摄后上传"
# What Pillow's and pillow-heif's decoders raise on damaged or hostile data (besides the
# UnidentifiedImageError and DecompressionBomb* handled on their own): ValueError for a text
# or ICC chunk that inflates past Pillow's limit, OSError for garbage after a valid header or
# a cut file, SyntaxError / struct.error / EOFError / IndexError / zlib.error from plugins'
# header parsers; `tests/parents/test_uploads.py` fuzzes every format to keep this complete.
DECODER_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    struct.error,
    EOFError,
    IndexError,
    zlib.error,
)


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


def content_hash(data: bytes) -> str:
    """What recognises the same photo sent twice: sha256 of the bytes received."""
    return hashlib.sha256(data).hexdigest()


def clean_photo(data: bytes) -> CleanPhoto:
    """The upload as an upright JPEG of its pixels only, or `PhotoRejected` (4xx).

    Every failure of the decoders on hostile input is answered here, in one place: Pillow's and
    pillow-heif's decoders raise `DECODER_ERRORS` for damaged data (a chunk that inflates past
    Pillow's limit, garbage after a valid header, a file cut inside its header, …)."""
    if len(data) > MAX_BYTES:
        raise PhotoRejected("photo_too_large", PHOTO_TOO_LARGE, 413)
    if not data:
        raise PhotoRejected("photo_empty", "没有收到照片内容")
    _register_heif()
    stage = "header"
    with _DECODES, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            source_format = image.format or "?"
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise PhotoRejected("photo_too_many_pixels", TOO_MANY_PIXELS)
            stage = "pixels"
            image.load()
            rgb = ImageOps.exif_transpose(image).convert("RGB")
            jpeg = _pixels_only_jpeg(rgb)
        except PhotoRejected:
            raise
        except UnidentifiedImageError as exc:
            raise PhotoRejected(
                "photo_unsupported", "只接受 JPEG、PNG、WebP 或 HEIC 格式的照片"
            ) from exc
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise PhotoRejected("photo_too_many_pixels", TOO_MANY_PIXELS) from exc
        except DECODER_ERRORS as exc:
            if stage == "pixels":
                raise PhotoRejected(
                    "photo_truncated", "照片文件不完整或已损坏，请重新拍摄上传"
                ) from exc
            raise PhotoRejected("photo_damaged", DAMAGED) from exc
    return CleanPhoto(jpeg, rgb.width, rgb.height, content_hash(data), source_format)


def _pixels_only_jpeg(rgb: Image.Image) -> bytes:
    """Pillow copies `info` along (a PNG's `comment` text chunk becomes a JPEG COM segment):
    encode the pixels with an empty `info`, then check the segments."""
    rgb.info = {}
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return strip_metadata(out.getvalue())


# Markers with no length field: TEM and the restart markers.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def strip_metadata(jpeg: bytes) -> bytes:
    """The JPEG with every COM and APP1–APP15 segment (EXIF, XMP, ICC, Photoshop, …) and any
    APP0 other than JFIF removed: the header a browser could sniff as HTML never leaves.

    Lossless (the entropy-coded data is copied as is); raises ValueError for a malformed
    header, which the encoder never writes."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    kept = [jpeg[:2]]
    dropped = False
    at = 2
    while at + 4 <= len(jpeg):
        if jpeg[at] != 0xFF:
            raise ValueError(f"no JPEG marker at {at}")
        marker = jpeg[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _STANDALONE:
            kept.append(jpeg[at : at + 2])
            at += 2
            continue
        end = at + 2 + struct.unpack(">H", jpeg[at + 2 : at + 4])[0]
        if marker == 0xDA:  # start of scan: the rest is image data
            if not dropped:
                return jpeg  # nothing to remove (every photo stored since): no copy
            kept.append(jpeg[at:])
            return b"".join(kept)
        metadata = marker == 0xFE or 0xE1 <= marker <= 0xEF
        if marker == 0xE0 and jpeg[at + 4 : at + 9] != b"JFIF\x00":
            metadata = True
        if metadata:
            dropped = True
        else:
            kept.append(jpeg[at:end])
        at = end
    raise ValueError("JPEG without image data")
