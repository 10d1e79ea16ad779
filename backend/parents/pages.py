"""The page a printed form's QR link opens (`{PUBLIC_BASE_URL}/m/f/{token}`).

A phone's camera or a messaging app that scans the form opens this link. Until the phone pages
exist it answers a small static page saying what the code is for and what to do; it shows
nothing of the form or the child (a stranger may scan a form left on a desk), only whether the
code is one of ours, which the token's signature tells without reading the database.
"""

from __future__ import annotations

import base64
import hashlib
import html

from litestar import Response, get
from litestar.enums import MediaType
from litestar.params import FromPath

from backend.deps import SettingsDep
from backend.ocr import FormTokenError, verify_form_token

_STYLE = (
    "body{font:17px/1.6 system-ui,sans-serif;margin:0 auto;max-width:36em;padding:1em;color:#222}"
    "h1{font-size:1.3em}li{margin:.4em 0}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
# Stricter than the API's: no script at all, only the one inline style above.
PAGE_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

FORM_PAGE = (
    "这是《学籍基础信息确认表》上的二维码",
    "<p>本码用于学生学籍数据质量核查：家长核对学校打印的孩子学籍信息，签名后拍照上传。</p>"
    "<ol>"
    "<li>核对确认表上的“原信息”，有错误的请在同一行“更正后信息”栏写上正确内容，不要涂改原信息；</li>"
    "<li>在表格下方签名，并写上日期；</li>"
    "<li>在学籍核查服务中用手机号、确认表上的注册码和孩子的出生日期（或身份证号后6位）注册，"
    "绑定孩子后拍下整页确认表上传。</li>"
    "</ol>"
    "<p>手机端页面开放后，扫描此码即可直接进入。有疑问请联系班主任。</p>"
    "<p>本页面不显示任何学生信息。</p>",
)
NOT_OURS_PAGE = (
    "无法识别的二维码",
    "<p>这个二维码不是本系统打印的学籍信息确认表上的二维码，或已损坏。"
    "请扫描确认表右上角的二维码；仍无法识别时请联系班主任。</p>",
)


def _page(title: str, body: str, status_code: int) -> Response[str]:
    document = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return Response(
        document,
        status_code=status_code,
        media_type=MediaType.HTML,
        headers={"Content-Security-Policy": PAGE_CSP},
    )


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
    (`{PUBLIC_BASE_URL}/m/f/{token}`): a short Chinese page saying what the code is for and
    how to sign up and upload. It shows nothing of the form or the child. The phone app reads
    the same code: sign-up and `POST /my/children` take it as `registration_code`.

    **Who may call**: anyone, without logging in.

    **Errors**: a token this service did not sign answers 404 with an HTML page saying the
    code is not one of its forms (no JSON error body: a browser shows it).
    """
    try:
        verify_form_token(token, settings.form_token_key.encode())
    except FormTokenError:
        return _page(*NOT_OURS_PAGE, status_code=404)
    return _page(*FORM_PAGE, status_code=200)
