"""Login and logout for token auth: the form turns the token into a login session.

Browsers cannot send a bearer header by themselves, so with ``auth="TOKEN"`` a person
types the token once; the cookie holds a random session id that the server forgets on
logout or expiry (``ui.sessions``). Wrong tokens are throttled per client.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from strego.ui.config import TokenAuth
from strego.ui.routes.common import app_url, render, route, ui
from strego.ui.security import SESSION_COOKIE, client_address

__all__ = ["routes"]


def _next(request: Request, value: object) -> str:
    root = request.scope.get("root_path", "")
    target = value if isinstance(value, str) else ""
    ok = target.startswith(root + "/") and not target.startswith("//") and "\\" not in target
    return target if ok else app_url(request, "dashboard")


async def login_form(request: Request) -> Response:
    if not isinstance(ui(request).config.auth, TokenAuth):
        return RedirectResponse(app_url(request, "dashboard"), status_code=303)
    context = {"next": _next(request, request.query_params.get("next")), "error": None}
    return render(request, "login.html", context, allow_fragment=False)


async def login(request: Request) -> Response:
    auth = ui(request).config.auth
    form = await request.form()
    target = _next(request, form.get("next"))
    if not isinstance(auth, TokenAuth):
        return RedirectResponse(target, status_code=303)
    state, client = ui(request), client_address(request)
    wait = state.throttle.retry_after(client)
    if wait:  # even the right token is refused now, so a blocked guess reveals nothing
        error = f"Too many failed attempts: try again in {wait} s."
        response = render(
            request, "login.html", {"next": target, "error": error}, 429, allow_fragment=False
        )
        response.headers["retry-after"] = str(wait)
        return response
    token = form.get("token")
    if not isinstance(token, str) or not auth.check(token):
        state.throttle.failed(client)
        context = {"next": target, "error": "That token is not valid."}
        return render(request, "login.html", context, 401, allow_fragment=False)
    state.throttle.succeeded(client)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        state.sessions.create(),
        max_age=int(state.sessions.lifetime_s),
        path=request.scope.get("root_path", "") + "/",
        httponly=True,
        samesite="lax",  # a link from elsewhere opens the page logged in; CSRF guards posts
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    """Ends the session server-side: a copy of the cookie stops working too."""
    ui(request).sessions.end(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse(app_url(request, "login"), status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=request.scope.get("root_path", "") + "/")
    return response


def routes() -> list[BaseRoute]:
    """This module's routes (built on demand, so each app has its own)."""
    return [
        route("/login", login_form, methods=["GET"], name="login"),
        route("/login", login, methods=["POST"], name="login_submit"),
        route("/logout", logout, methods=["POST"], name="logout"),
    ]
