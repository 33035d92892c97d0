"""Items 9, 10 and 11: sessions, login throttling, CSRF binding and hostile header bytes."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

import strego
from strego.cli.exposure import check_exposure
from strego.ui import create_app
from strego.ui.state import UIState
from tests.cli.conftest import Cli
from tests.ui.conftest import ClientFactory, csrf_of

TOKEN = "correct-horse-battery"


def _state(app: Starlette) -> UIState:
    state: UIState = app.state.strego
    return state


class Clock:
    """A clock the test moves (sessions and the throttle take it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _login(http: httpx.AsyncClient, token: str = TOKEN) -> httpx.Response:
    page = await http.get("/login")
    form = {"csrf_token": csrf_of(page.text), "token": token, "next": "/queues"}
    return await http.post("/login", data=form)


@pytest.fixture
async def token_app(broker: strego.RedisBroker, client: strego.Client) -> Starlette:
    await client.enqueue(strego.Task("t"))
    return create_app(broker, auth=TOKEN)


async def test_logout_ends_the_session_server_side(
    token_app: Starlette, make_client: ClientFactory
) -> None:
    """A copy of the session cookie taken before logout stops working after it."""
    browser = await make_client(token_app)
    assert (await _login(browser)).status_code == 303
    stolen = browser.cookies["strego_session"]
    assert TOKEN not in stolen
    page = await browser.get("/queues")
    assert page.status_code == 200
    assert (await browser.post("/logout", data={"csrf_token": csrf_of(page.text)})).status_code
    thief = await make_client(token_app, cookies={"strego_session": stolen})
    assert (await thief.get("/queues")).status_code == 303  # back to the login form
    assert (await thief.get("/api/queues")).status_code == 401


async def test_sessions_expire(token_app: Starlette, make_client: ClientFactory) -> None:
    """Idle too long, or older than the lifetime even when used: the session is gone."""
    clock = Clock()
    sessions = _state(token_app).sessions
    sessions.clock = clock
    browser = await make_client(token_app)
    await _login(browser)
    clock.now += sessions.idle_s - 1
    assert (await browser.get("/api/queues")).status_code == 200  # used: idle timer reset
    clock.now += sessions.idle_s + 1
    assert (await browser.get("/api/queues")).status_code == 401
    await _login(browser)
    for _ in range(int(sessions.lifetime_s // sessions.idle_s) + 1):
        clock.now += sessions.idle_s - 1
        assert (await browser.get("/api/queues")).status_code in (200, 401)
    assert (await browser.get("/api/queues")).status_code == 401
    assert len(sessions) <= 1


async def test_sessions_are_bounded(token_app: Starlette, make_client: ClientFactory) -> None:
    """Logging in over and over keeps at most max_sessions in memory."""
    sessions = _state(token_app).sessions
    sessions.max_sessions = 5
    browser = await make_client(token_app)
    for _ in range(12):
        await _login(browser)
    assert len(sessions) == 5


@pytest.mark.parametrize("mode", ["basic", "bearer", "login"])
async def test_wrong_credentials_are_throttled(
    mode: str, broker: strego.RedisBroker, make_client: ClientFactory, client: strego.Client
) -> None:
    """After 10 wrong guesses a client gets 429 + Retry-After, even for a right guess,
    until its window ends; then the right credentials work again."""
    await client.enqueue(strego.Task("t"))
    app = create_app(broker, auth=("admin", TOKEN) if mode == "basic" else TOKEN)
    clock = Clock()
    throttle = _state(app).throttle
    throttle.clock = clock

    async def attempt(secret: str) -> httpx.Response:
        if mode == "basic":
            http = await make_client(app, auth=("admin", secret))
            return await http.get("/api/queues")
        if mode == "bearer":
            http = await make_client(app, headers={"authorization": f"Bearer {secret}"})
            return await http.get("/api/queues")
        return await _login(await make_client(app), secret)

    statuses = [(await attempt(f"guess-{i:04d}-xxxx")).status_code for i in range(40)]
    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}
    blocked = await attempt(TOKEN)
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
    clock.now += throttle.window_s
    assert (await attempt(TOKEN)).status_code in (200, 303)


def test_short_secrets_are_refused_beyond_loopback() -> None:
    """Listening beyond loopback, a password or token under 12 characters is refused."""
    check_exposure("127.0.0.1", has_auth=True, insecure=False, secret="short")
    check_exposure("0.0.0.0", has_auth=True, insecure=False, secret="x" * 12)
    with pytest.raises(ValueError, match="12 characters"):
        check_exposure("0.0.0.0", has_auth=True, insecure=False, secret="x" * 11)
    with pytest.raises(ValueError, match="12 characters"):
        check_exposure("::", has_auth=True, insecure=True, secret="x" * 11)


@pytest.mark.parametrize(
    "args",
    [
        ("ui", "--host", "0.0.0.0", "--auth", "admin:eleven-char"),
        ("ui", "--host", "0.0.0.0", "--token", "eleven-char"),
        ("ui", "--host", "0.0.0.0"),
        ("dev", "--host", "0.0.0.0"),  # item 8: strego dev enforced nothing
        ("dev", "--host", "192.0.2.1", "--redis", "redis://127.0.0.1:1/0"),
    ],
)
async def test_cli_refuses_weak_exposure(cli: Cli, args: tuple[str, ...]) -> None:
    """strego ui and strego dev refuse to serve beyond loopback without (strong) auth,
    before starting anything."""
    result = await cli(*args, connect=False)
    assert result.code == 2  # a command line that cannot be allowed: a usage error
    assert "refusing to listen on" in result.err


async def test_a_planted_csrf_cookie_is_useless(
    app: Starlette, make_client: ClientFactory, client: strego.Client, broker: strego.RedisBroker
) -> None:
    """A sibling origin (any port of 127.0.0.1 shares cookies) plants strego_csrf=X and
    submits X, or a token it got for its own cookie: both refused (item 11)."""
    await client.enqueue(strego.Task("t"))
    planted = "A" * 43
    victim = await make_client(app, cookies={"strego_csrf": planted})
    for submitted in (planted, "B" * 43):
        response = await victim.post(
            "/api/queues/default/pause", headers={"x-csrf-token": submitted}
        )
        assert response.status_code == 403
    attacker = await make_client(app)
    their_token = (await attacker.get("/api/csrf")).json()["csrf_token"]
    response = await victim.post("/api/queues/default/pause", headers={"x-csrf-token": their_token})
    assert response.status_code == 403
    assert not (await strego.Inspector(broker).queue_info("default")).paused
    # The token the UI itself renders for the victim's cookie works.
    own = (await victim.get("/api/csrf")).json()["csrf_token"]
    ok = await victim.post("/api/queues/default/pause", headers={"x-csrf-token": own})
    assert ok.status_code == 200


async def test_csrf_tokens_are_bound_to_the_login_session(
    token_app: Starlette, make_client: ClientFactory
) -> None:
    """Token auth: a token from before login, or from another session, is refused."""
    alice, mallory = await make_client(token_app), await make_client(token_app)
    await _login(alice)
    await _login(mallory)
    mallory_token = (await mallory.get("/api/csrf")).json()["csrf_token"]
    alice_token = (await alice.get("/api/csrf")).json()["csrf_token"]
    assert mallory_token != alice_token
    forged = await alice.post("/api/queues/default/pause", headers={"x-csrf-token": mallory_token})
    assert forged.status_code == 403
    ok = await alice.post("/api/queues/default/pause", headers={"x-csrf-token": alice_token})
    assert ok.status_code == 200


HOSTILE_BYTES = [b"\xe9", b"\xc3\xa9", b"\xff\xfe", b"\x00", "é".encode()]


@pytest.mark.parametrize("auth", [None, ("admin", TOKEN), TOKEN])
@pytest.mark.parametrize("raw", HOSTILE_BYTES)
async def test_non_ascii_header_bytes_never_500(
    auth: object, raw: bytes, broker: strego.RedisBroker, make_client: ClientFactory
) -> None:
    """Non-ASCII bytes in cookies, the CSRF header and credentials: 4xx, never 500 (item 9)."""
    app = create_app(broker, auth=auth)
    http = await make_client(app)
    tries = [
        ("GET", "/api/queues", {"cookie": b"strego_session=" + raw}),
        ("GET", "/api/queues", {"cookie": b"strego_csrf=" + raw}),
        ("GET", "/api/queues", {"authorization": b"Basic " + raw}),
        ("GET", "/api/queues", {"authorization": b"Bearer " + raw}),
        ("POST", "/api/queues/default/pause", {"x-csrf-token": raw}),
        (
            "POST",
            "/api/queues/default/pause",
            {"x-csrf-token": raw, "cookie": b"strego_csrf=" + raw},
        ),
        ("POST", "/login", {"x-csrf-token": raw, "origin": raw}),
        ("GET", "/", {"host": b"ui.localhost" + raw}),
        ("POST", "/api/queues/default/pause", {"sec-fetch-site": raw}),
    ]
    for method, path, headers in tries:
        response = await http.request(method, path, headers=headers)  # type: ignore[arg-type]
        assert 400 <= response.status_code < 500 or response.status_code in (200, 303), (
            method,
            path,
            headers,
            response.status_code,
        )
        assert response.status_code != 500
