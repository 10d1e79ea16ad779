"""Safety headers on every answer (errors and unrouted paths included), no caching of tokens or
personal data, a CSP the docs page can live with, and /schema behind a setting."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from urllib.parse import urlparse

import httpx
import pytest
from litestar import Litestar, Response, get

from backend.accounts.roles import Role
from backend.config import Settings, settings_from_env
from backend.http import response_headers_middleware
from tests.factories import PASSWORD, World, bearer, build_world, login, make_students


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 1)
    return world


def assert_safe(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url.path} → {response.status_code}"
    assert response.headers.get("x-content-type-options") == "nosniff", where
    assert response.headers.get("x-frame-options") == "DENY", where
    assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", ""), where
    assert response.headers.get("cache-control") == "no-store", where
    assert len(response.headers.get_list("x-request-id")) == 1, where


async def test_token_pairs_are_never_cached(client: httpx.AsyncClient, world: World) -> None:
    signed_in = await client.post(
        "/auth/login", json={"phone": world.phones[Role.parent], "password": PASSWORD}
    )
    refreshed = await client.post(
        "/auth/refresh", json={"refresh_token": signed_in.json()["refresh_token"]}
    )

    assert signed_in.status_code == refreshed.status_code == 200
    assert "access_token" in refreshed.json()
    assert_safe(signed_in)
    assert_safe(refreshed)


async def test_personal_data_is_never_cached(client: httpx.AsyncClient, world: World) -> None:
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    student = world.students[0]

    responses = [
        await client.get("/students", headers=registrar),
        await client.get(f"/students/{student}", headers=registrar),
        await client.post(
            f"/students/{student}/reveal", json={"field": "phone"}, headers=registrar
        ),
        await client.get("/me", headers=registrar),
        await client.get("/uploads/1", headers=registrar),
    ]

    assert [r.status_code for r in responses] == [200, 200, 200, 200, 404]
    assert responses[2].json()["value"].startswith("138")  # the full phone, so: never cached
    for response in responses:
        assert_safe(response)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health", 200),
        ("GET", "/me", 401),  # no token: raised by the authentication middleware
        ("GET", "/no/such/path", 404),  # unrouted: never reaches the app's middleware
        ("DELETE", "/health", 405),
        ("GET", "/students/2147483648", 401),
        ("POST", "/auth/login", 400),  # validation error
    ],
)
async def test_every_answer_carries_the_headers(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path, json={} if method == "POST" else None)

    assert response.status_code == status
    assert_safe(response)
    assert (
        response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    )


async def test_errors_raised_by_the_input_checks_carry_the_headers(
    client: httpx.AsyncClient, world: World
) -> None:
    registrar = bearer(await login(client, world.phones[Role.registrar]))

    out_of_range = await client.get("/students/2147483648", headers=registrar)
    nul = await client.get("/students?q=%00", headers=registrar)

    assert (out_of_range.status_code, nul.status_code) == (404, 400)
    assert out_of_range.json()["request_id"] == out_of_range.headers["x-request-id"]
    assert_safe(out_of_range)
    assert_safe(nul)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self.links: list[dict[str, str | None]] = []
        self.spec_url: str | None = None
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            self.scripts.append(attributes)
            self._in_script = "src" not in attributes
        elif tag == "link":
            self.links.append(attributes)
        elif tag == "redoc":
            self.spec_url = attributes.get("spec-url")

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


def _directive(csp: str, name: str) -> list[str]:
    for part in csp.split(";"):
        words = part.split()
        if words and words[0] == name:
            return words[1:]
    return []


REDOC_SHA256 = "6beb5aea23b71d09122ee35de8f326e38aec050e774f3bfba1f34e5c36608986"  # redoc 2.5.2


async def test_docs_page_runs_under_its_csp_and_loads_nothing_from_outside(
    client: httpx.AsyncClient,
) -> None:
    """Everything the page loads comes from the service itself (CDNs are slow or blocked in
    China), is allowed by its CSP, and the CSP allows no outside host: no inline script, no
    eval, no web fonts, the schema from this origin."""
    response = await client.get("/schema")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert_safe(response)
    csp = response.headers["content-security-policy"]
    assert not re.search(r"https?:|//", csp), csp  # no host named in any directive
    assert not re.search(r"https?://|//[a-z]", response.text), response.text
    page = _Page()
    page.feed(response.text)
    assert page.inline == []
    assert page.links == []  # no fonts or icons
    script_sources = _directive(csp, "script-src")
    assert script_sources == ["'self'"]
    assert _directive(csp, "default-src") == ["'none'"]
    assert page.scripts
    for script in page.scripts:
        src = urlparse(str(script["src"]))
        assert not src.scheme
        assert not src.netloc
        served = await client.get(src.path)
        assert served.status_code == 200
        assert "javascript" in served.headers["content-type"]
        assert hashlib.sha256(served.content).hexdigest() == REDOC_SHA256
        assert b"fonts.googleapis" not in served.content
    assert page.spec_url is not None
    assert not urlparse(page.spec_url).netloc  # same origin, which connect-src 'self' allows
    assert _directive(csp, "connect-src") == ["'self'"]
    spec = await client.get(page.spec_url)
    assert spec.status_code == 200
    assert spec.json()["info"]["title"] == "学籍移动端 API"


async def test_the_docs_script_is_public_and_gone_with_the_schema(settings: Settings) -> None:
    """Served without a token (the page is public), and not at all when /schema is off."""
    from app import create_app

    path = "/schema/assets/redoc.standalone.js"
    for enabled, status in ((True, 200), (False, 404)):
        app = create_app(settings.with_(openapi_enabled=enabled))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get(path)
        assert response.status_code == status, enabled


async def test_only_the_one_docs_page_is_served(client: httpx.AsyncClient) -> None:
    """Litestar's other UIs inline the whole schema in a script the CSP would block."""
    for path in ("/schema/swagger", "/schema/elements", "/schema/rapidoc"):
        response = await client.get(path)
        assert response.status_code == 404, path


async def test_schema_can_be_switched_off(settings: Settings) -> None:
    from app import create_app

    application = create_app(settings.with_(openapi_enabled=False))
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for path in ("/schema", "/schema/openapi.json", "/schema/openapi.yaml"):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert (response.json()["code"], response.json()["message"]) == (
                "no_such_path",
                "请求的地址不存在，请检查路径",
            )
            assert_safe(response)


def test_openapi_setting_comes_from_the_environment() -> None:
    base = {"JWT_KEYS": "k:" + "x" * 40, "FORM_TOKEN_KEY": "f" * 40, "VAR_DIR": "/nonexistent"}
    assert settings_from_env(base).openapi_enabled is True
    assert settings_from_env({**base, "OPENAPI_ENABLED": "false"}).openapi_enabled is False


async def test_a_response_may_choose_its_own_caching() -> None:
    """No-store is the default; an asset that sets Cache-Control keeps it (and its own CSP)."""

    @get("/asset.css", media_type="text/css")
    async def asset() -> Response[str]:
        return Response(
            "body{}", headers={"Cache-Control": "public, max-age=3600"}, media_type="text/css"
        )

    @get("/data")
    async def data() -> dict[str, str]:
        return {"a": "b"}

    application = Litestar([asset, data], middleware=[response_headers_middleware])
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        cached = await client.get("/asset.css")
        default = await client.get("/data")

    assert cached.headers["cache-control"] == "public, max-age=3600"
    assert cached.headers["x-content-type-options"] == "nosniff"
    assert default.headers["cache-control"] == "no-store"
    assert re.fullmatch(
        r"default-src 'none'; frame-ancestors 'none'", default.headers["content-security-policy"]
    )
