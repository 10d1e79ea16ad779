"""Photos as phones send them, and as attackers might."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

# What exif_transpose applies for each orientation, inverted: the raw sensor image that an
# upright picture arrives as.
RAW_FROM_UPRIGHT = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def upright() -> Image.Image:
    """120×80, a red block in the top-left corner: any wrong turn moves it."""
    image = Image.new("RGB", (120, 80), "white")
    image.paste((220, 0, 0), (0, 0, 40, 30))
    return image


def jpeg_with_orientation(orientation: int) -> bytes:
    transform = RAW_FROM_UPRIGHT[orientation]
    raw = upright() if transform is None else upright().transpose(transform)
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (30.0, 15.0, 42.0)  # a home's latitude: must not be kept
    out = io.BytesIO()
    raw.save(out, "JPEG", quality=95, exif=exif)
    return out.getvalue()


def heic() -> bytes:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    out = io.BytesIO()
    upright().save(out, "HEIF", quality=90)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size (a decompression bomb's calling card)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def truncated_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 600), (120, 160, 200)).save(out, "JPEG", quality=95)
    data = out.getvalue()
    return data[: len(data) // 2]
