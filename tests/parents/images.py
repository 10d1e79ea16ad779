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


# --- Hostile photos: metadata that must not survive, and inputs that broke the decoder ---

SCRIPT = b"<html><body><script>alert(1)</script></body></html>"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """The marker segments of a JPEG up to the start of scan: (marker, payload)."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    found: list[tuple[int, bytes]] = []
    at = 2
    while at < len(data):
        assert data[at] == 0xFF, f"no marker at {at}"
        marker = data[at + 1]
        length = struct.unpack(">H", data[at + 2 : at + 4])[0]
        found.append((marker, data[at + 4 : at + 2 + length]))
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        at += 2 + length
    return found


def polyglot_jpeg() -> bytes:
    """A real JPEG that is also HTML: a <script> in a COM segment, plus every APPn kind of
    metadata a phone or an editor writes (EXIF, XMP, ICC, Photoshop IRB)."""
    out = io.BytesIO()
    upright().save(out, "JPEG", quality=95)
    data = out.getvalue()
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    icc = b"\x00\x00\x02\x0cICC-PROFILE-MARKER" + b"\x00" * 100
    extra = (
        _segment(0xFE, SCRIPT)
        + _segment(0xE1, b"Exif\x00\x00" + exif.tobytes())
        + _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>" + SCRIPT + b"</x:xmpmeta>")
        + _segment(0xE2, b"ICC_PROFILE\x00\x01\x01" + icc)
        + _segment(0xED, b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x10" + SCRIPT[:16])
    )
    return data[:2] + extra + data[2:]


def png_with_text(comment: bytes = SCRIPT) -> bytes:
    """A PNG carrying tEXt (a `comment` key Pillow would copy into a JPEG's COM), zTXt and iTXt
    (XMP) chunks."""
    out = io.BytesIO()
    upright().save(out, "PNG")
    data = out.getvalue()
    at = data.index(b"IDAT") - 4
    text = (
        _chunk(b"tEXt", b"comment\x00" + comment)
        + _chunk(b"zTXt", b"Description\x00\x00" + zlib.compress(SCRIPT))
        + _chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + SCRIPT)
    )
    return data[:at] + text + data[at:]


def webp_with_metadata() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    out = io.BytesIO()
    upright().save(out, "WEBP", exif=exif, xmp=SCRIPT, icc_profile=b"ICC-PROFILE-MARKER" * 8)
    return out.getvalue()


def heic_with_metadata() -> bytes:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    out = io.BytesIO()
    upright().save(out, "HEIF", quality=90, exif=exif.tobytes(), xmp=SCRIPT)
    return out.getvalue()


def png_with_inflating_chunk(kind: bytes) -> bytes:
    """A small PNG whose zTXt or iCCP chunk inflates past Pillow's text limit (64 MiB of
    zeros compressed to ≈ 65 KB)."""
    bomb = zlib.compress(b"\x00" * (64 * 1024 * 1024), 9)
    payload = (b"Comment\x00\x00" if kind == b"zTXt" else b"icc\x00\x00") + bomb
    out = io.BytesIO()
    upright().save(out, "PNG")
    data = out.getvalue()
    at = data.index(b"IDAT") - 4
    return data[:at] + _chunk(kind, payload) + data[at:]


def webp_header_then_garbage() -> bytes:
    return b"RIFF" + struct.pack("<I", 1008) + b"WEBPVP8 " + b"\xff" * 1000


def jpeg_cut_in_header() -> bytes:
    """Cut inside the marker segments, before any image data."""
    out = io.BytesIO()
    upright().save(out, "JPEG", quality=95)
    return out.getvalue()[:150]


def distinct_jpeg(n: int) -> bytes:
    """An upright photo whose bytes differ for each n (another shot of the same form)."""
    image = upright()
    image.putpixel((60 + n % 50, 40 + n // 50 % 30), (n % 256, 90, 30))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def tiff() -> bytes:
    """A real TIFF: Pillow opens it when not told which formats to accept."""
    out = io.BytesIO()
    upright().save(out, "TIFF")
    return out.getvalue()


def psd() -> bytes:
    """A minimal Photoshop file (8-bit RGB, raw image data), the kind Pillow's PSD plugin
    parses; Pillow cannot write one."""
    width, height = 4, 3
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, height, width, 8, 3)
    sections = struct.pack(">I", 0) * 3  # colour mode data, image resources, layers
    return header + sections + struct.pack(">H", 0) + b"\x80" * (3 * width * height)


def eps() -> bytes:
    """An Encapsulated PostScript file (Pillow hands its pixels to Ghostscript)."""
    out = io.BytesIO()
    upright().save(out, "EPS")
    return out.getvalue()
