"""The VAPID public key a browser needs to subscribe to Web Push (`applicationServerKey`): the
public half of the key the service signs its pushes with, base64url, uncompressed P-256."""

from __future__ import annotations

import base64
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from backend.config import PushSettings
from backend.errors import NotFound


class WebPushOff(NotFound):
    code = "webpush_off"
    message = "本服务未开启浏览器推送"


@lru_cache(maxsize=4)
def _public_key(path: str) -> str:
    private = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise WebPushOff()
    point = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode()


def public_key(push: PushSettings) -> str:
    """The key, or 404 `webpush_off` when the service sends no Web Push."""
    if not push.webpush_on or push.vapid_private_key_file is None:
        raise WebPushOff()
    return _public_key(push.vapid_private_key_file)
