"""The phone pages: a small web app at `/m/` (plain ES modules and CSS under
`backend/static/m/`, no build step) and the link a printed form's QR code holds,
`{PUBLIC_BASE_URL}/m/f/{token}`, which opens the same app on the parent's sign-up.

The page a phone's camera opens shows nothing of the form or the child (a stranger may scan a
form left on a desk): the shell is the same for every token, and whether the code is one of
ours is told by the token's signature, without reading the database. Everything the app shows
comes from the public API, as a native app would call it (docs/phone-pages.md).
"""

from __future__ import annotations

import html
from pathlib import Path

from litestar import Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.enums import MediaType
from litestar.params import FromPath
from litestar.static_files import create_static_files_router

from backend.deps import SettingsDep
from backend.ocr import FormTokenError, verify_form_token

ASSETS = Path(__file__).resolve().parents[1] / "static" / "m"
ASSETS_PATH = "/m/assets"
# Only this origin: the app's own modules and stylesheet, its API, photos shown from blobs
# (a shrunk photo's preview, evidence fetched with the bearer token). No inline script or style.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_SHELL = (ASSETS / "index.html").read_text(encoding="utf-8")
NOT_OURS_PAGE = (
    "无法识别的二维码",
    "<p>这个二维码不是本系统打印的学籍信息确认表上的二维码，或已损坏。"
    "请扫描确认表右上角的二维码；仍无法识别时请联系班主任。</p>",
)


def _shell() -> Response[str]:
    return Response(
        _SHELL, media_type=MediaType.HTML, headers={"Content-Security-Policy": PAGE_CSP}
    )


def _not_ours() -> Response[str]:
    title, body = NOT_OURS_PAGE
    document = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<title>{html.escape(title)}</title><link rel="stylesheet" href="{ASSETS_PATH}/app.css">'
        f"</head><body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return Response(
        document,
        status_code=404,
        media_type=MediaType.HTML,
        headers={"Content-Security-Policy": PAGE_CSP},
    )


@get(["/m", "/m/"], exclude_from_auth=True, media_type=MediaType.HTML, include_in_schema=False)
async def phone_app() -> Response[str]:
    """The phone pages (signing in, then the parent's, teacher's or reviewer's screens)."""
    return _shell()


@get(
    "/m/f/{token:str}",
    exclude_from_auth=True,
    tags=["parents"],
    summary="Open a printed form's QR link",
    operation_id="openFormLink",
    media_type=MediaType.HTML,
    include_in_schema=False,  # a page for a phone's browser, not an API operation
)
async def open_form_link(token: FromPath[str], settings: SettingsDep) -> Response[str]:
    """The page a phone opens from the QR code printed on a confirmation form
    (`{PUBLIC_BASE_URL}/m/f/{token}`): the phone pages, opening on the parent's sign-up with
    the code already filled in (the app reads it from the address). It shows nothing of the
    form or the child. Sign-up and `POST /my/children` take the same code as
    `registration_code`.

    **Who may call**: anyone, without logging in.

    **Errors**: a token this service did not sign answers 404 with an HTML page saying the
    code is not one of its forms (no JSON error body: a browser shows it).
    """
    try:
        verify_form_token(token, settings.form_token_key.encode())
    except FormTokenError:
        return _not_ours()
    return _shell()


@get("/m/sw.js", exclude_from_auth=True, include_in_schema=False)
async def phone_service_worker() -> Response[bytes]:
    """The service worker that shows Web Push notifications. Served from `/m/` (not under
    `/m/assets/`) so that its scope covers the whole app; never cached, so that a new version
    reaches phones at once (browsers also check it themselves at least daily)."""
    return Response(
        (ASSETS / "sw.js").read_bytes(),
        media_type="text/javascript",
        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
    )


def phone_assets() -> Router:
    """The app's modules and stylesheet. Cached for 10 minutes only: no build step means no
    hashed file names, so a new release must reach phones soon."""
    return create_static_files_router(
        path=ASSETS_PATH,
        directories=[ASSETS],
        include_in_schema=False,
        cache_control=CacheControlHeader(max_age=600, public=True),
        opt={"exclude_from_auth": True},
    )
