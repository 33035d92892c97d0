"""Auth, CSRF, read-only and escaping: the UI is safe to expose and to look at."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

import strego
from strego.errors import ConfigurationError
from strego.ui import BasicAuth, TokenAuth, create_app
from tests.ui.conftest import XSS, ClientFactory, DeadMaker, csrf_of, post_api, post_form

TOKEN = "s3cret-token-value"


def post_routes(app: Starlette) -> list[str]:
    """Every mutating route of the app, with sample path parameters filled in."""
    paths = []
    for route in app.routes:
        if isinstance(route, Route) and route.methods and "POST" in route.methods:
            path = route.path.replace("{queue:ident}", "default")
            path = path.replace("{task_id:ident}", "t1").replace("{consumer:ident}", "c1")
            paths.append(path.replace("{action}", "pause"))
    return paths


async def test_every_post_without_csrf_is_403(
    app: Starlette, http: httpx.AsyncClient, client: strego.Client, inspector: strego.Inspector
) -> None:
    """No form field and no header: every mutating route refuses, and nothing changes."""
    await client.enqueue(strego.Task("t"))
    paths = post_routes(app)
    assert len(paths) >= 15
    for path in paths:
        if path in ("/login", "/logout"):
            continue
        response = await http.post(path, data={"ids": "x", "action": "retry"})
        assert response.status_code == 403, path
    assert not (await inspector.queue_info("default")).paused


async def test_wrong_or_cookieless_csrf_is_403(
    app: Starlette, http: httpx.AsyncClient, make_client: ClientFactory, client: strego.Client
) -> None:
    """A token that differs from the cookie, or a token without its cookie, is refused."""
    await client.enqueue(strego.Task("t"))
    forged = await http.post("/queues/default/actions/pause", data={"csrf_token": "x" * 43})
    assert forged.status_code == 403
    header = await http.post("/api/queues/default/pause", headers={"x-csrf-token": "y" * 43})
    assert header.status_code == 403 and header.json() == {"error": "CSRF token missing or invalid"}
    stranger = await make_client(app)  # never got a cookie: a cross-site request
    stolen = await stranger.post(
        "/queues/default/actions/pause", data={"csrf_token": http.cookies["strego_csrf"]}
    )
    assert stolen.status_code == 403
    assert (await post_form(http, "/queues/default/actions/pause")).status_code == 303


async def test_csrf_cookie_flags_and_page_token(
    app: Starlette, http: httpx.AsyncClient, make_client: ClientFactory
) -> None:
    """The cookie is HttpOnly and SameSite=Strict; pages render the same token in forms."""
    fresh = await (await make_client(app)).get("/queues")
    cookie = fresh.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    page = (await http.get("/queues")).text
    signed = (await http.get("/api/csrf")).json()["csrf_token"]
    assert signed != http.cookies["strego_csrf"]  # bound to the cookie, not equal to it
    assert f'"X-CSRF-Token": "{signed}"' in page.replace("&#34;", '"')


async def test_security_headers(http: httpx.AsyncClient) -> None:
    """Pages forbid inline script, framing and sniffing."""
    response = await http.get("/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "<script>" not in response.text  # no inline script at all


async def test_basic_auth(
    broker: strego.RedisBroker, make_client: ClientFactory, client: strego.Client
) -> None:
    """Basic auth: 401 with a challenge without credentials, pages and API with them."""
    await client.enqueue(strego.Task("t"))
    app = create_app(broker, auth=("admin", "pw"))
    anonymous = await make_client(app)
    for path in ("/", "/api/queues", "/api/openapi.json", "/tasks/x"):
        response = await anonymous.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith('Basic realm="strego"')
    assert (await anonymous.get("/static/app.css")).status_code == 200
    wrong = await make_client(app, auth=("admin", "nope"))
    assert (await wrong.get("/")).status_code == 401
    broken = await anonymous.get("/", headers={"authorization": "Basic !!notbase64"})
    assert broken.status_code == 401
    user = await make_client(app, auth=("admin", "pw"))
    page = await user.get("/queues")
    assert page.status_code == 200
    # Browsers resend basic credentials on their own, so CSRF still applies.
    assert (await user.post("/api/queues/default/pause")).status_code == 403
    ok = await user.post("/queues/default/actions/pause", data={"csrf_token": csrf_of(page.text)})
    assert ok.status_code == 303


async def test_token_auth_api_and_login(
    broker: strego.RedisBroker, make_client: ClientFactory, client: strego.Client
) -> None:
    """Token auth: bearer for the API (no CSRF needed), a login form and cookie for people."""
    await client.enqueue(strego.Task("t"))
    app = create_app(broker, auth=TOKEN)
    browser = await make_client(app)
    response = await browser.get("/queues")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/queues"
    assert (await browser.get("/api/queues")).status_code == 401
    bearer = {"authorization": f"Bearer {TOKEN}"}
    assert (await browser.get("/api/queues", headers=bearer)).status_code == 200
    paused = await browser.post("/api/queues/default/pause", headers=bearer)
    assert paused.status_code == 200  # bearer requests are exempt from CSRF
    login = await browser.get("/login?next=/queues")
    assert login.status_code == 200 and 'name="token"' in login.text
    form = {"csrf_token": csrf_of(login.text), "next": "/queues"}
    bad = await browser.post("/login", data={**form, "token": "wrong-token"})
    assert bad.status_code == 401 and "not valid" in bad.text
    good = await browser.post("/login", data={**form, "token": TOKEN})
    assert good.status_code == 303 and good.headers["location"] == "/queues"
    assert "strego_session" in browser.cookies and TOKEN not in browser.cookies["strego_session"]
    page = await browser.get("/queues")
    assert page.status_code == 200 and "Log out" in page.text
    assert (await browser.post("/api/queues/default/resume")).status_code == 403  # CSRF
    await browser.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert (await browser.get("/queues")).status_code == 303


async def test_read_only_hides_and_refuses_actions(
    broker: strego.RedisBroker, make_client: ClientFactory, make_dead: DeadMaker
) -> None:
    """Read-only: no action buttons anywhere, and every POST is a 403 even with CSRF."""
    [task_id] = await make_dead(1)
    app = create_app(broker, read_only=True)
    http = await make_client(app)
    await http.get("/api/csrf")
    for path in ("/", "/queues", "/queues/default?state=dead", "/dead", f"/tasks/{task_id}"):
        page = (await http.get(path)).text
        assert 'method="post"' not in page, path
        assert "read-only" in page
    response = await post_api(http, f"/api/tasks/{task_id}/retry")
    assert response.status_code == 403 and "read-only" in response.json()["error"]
    response = await post_form(http, f"/tasks/{task_id}/actions/delete")
    assert response.status_code == 403
    assert (await strego.Inspector(broker).queue_info("default")).dead == 1


async def test_user_strings_are_escaped_everywhere(
    http: httpx.AsyncClient, make_dead: DeadMaker, client: strego.Client
) -> None:
    """Payloads, labels, errors, types and queue names with markup render as text."""
    queue = "q<b>x</b>"
    [dead] = await make_dead(
        1,
        queue=queue,
        error=XSS,
        labels={XSS: XSS},
        payload={"html": XSS},
        task_type=f"t{XSS}",
    )
    await client.enqueue(strego.Task("text", XSS.encode(), serializer=strego.RawSerializer()))
    pages = [
        f"/tasks/{dead}",
        "/queues/q%3Cb%3Ex%3C~2Fb%3E?state=dead",
        "/dead?queue=q%3Cb%3Ex%3C/b%3E",
        "/",
        "/queues",
        "/queues/default",
    ]
    for path in pages:
        response = await http.get(path)
        assert response.status_code == 200, path
        assert "<script>alert" not in response.text, path
        assert "<b>x</b>" not in response.text, path
    detail = (await http.get(f"/tasks/{dead}")).text
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert detail.count(escaped) >= 4  # type, label key and value, error, payload
    assert "q&lt;b&gt;x&lt;/b&gt;" in detail
    raw_page = (await http.get("/queues/default")).text
    assert escaped in raw_page  # the raw payload's preview


def test_auth_options_are_validated() -> None:
    """Bad auth settings fail at create_app time with a clear message."""
    with pytest.raises(ConfigurationError):
        TokenAuth("short")
    with pytest.raises(ConfigurationError):
        BasicAuth("a:b", "pw")
    assert "pw" not in repr(BasicAuth("admin", "pw"))
    broker = strego.RedisBroker("redis://127.0.0.1:1/0")
    with pytest.raises(ConfigurationError):
        create_app(broker, auth=42)
    with pytest.raises(ConfigurationError):
        create_app(broker, auth=("only-user",))
