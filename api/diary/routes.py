"""The e-production diary pages: plain HTML forms (no script), Vietnamese first, for a phone in the field.

Like the review console (api/console/routes.py, whose session design this follows), the pages hold no data and no
rule: each form becomes one call to `POST /api/v1/epcis/diary` made in-process as the signed-in key, so what a
cooperative does here is exactly what packhouse software does through the API. Signing in sends the API key once
to `POST /api/v1/epcis/sessions`; the cookie (HttpOnly, SameSite=Strict, path /diary) holds only the session id,
and every form carries a token derived from it (CSRF).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.kernel import sessions

router = APIRouter(prefix="/diary", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")

COOKIE = "smartgate_diary"
SESSIONS = "/api/v1/epcis/sessions"
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class SignedOut(Exception):
    """No live session: back to the sign-in page."""


def _csrf(secret: str, token: str) -> str:
    return hmac.new(secret.encode(), b"diary-csrf:" + token.encode(), hashlib.sha256).hexdigest()[:40]


def _usable(text: str) -> bool:
    return 0 < len(text) <= 200 and text.isascii() and text.isprintable()


def _same_site(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.url.netloc}"


async def _api(
    request: Request,
    method: str,
    path: str,
    *,
    token: str,
    bearer: bool = False,
    json_body: Any = None,
    params: dict[str, Any] | None = None,
) -> httpx.Response:
    secret = request.app.state.runtime.settings.secret_key
    headers = {"Authorization": f"Bearer {token}" if bearer else sessions.authorization(secret, token)}
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://smartgate.internal") as client:
        response = await client.request(method, path, json=json_body, params=params, headers=headers)
    if response.status_code == 401:
        raise SignedOut
    return response


def _page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    token = request.cookies.get(COOKIE, "")
    context.setdefault("csrf", _csrf(request.app.state.runtime.settings.secret_key, token) if token else "")
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def _token(request: Request) -> str:
    token = request.cookies.get(COOKIE, "")
    if not _usable(token):
        raise SignedOut
    return token


def _to_login() -> Response:
    response = RedirectResponse("/diary/login", status_code=303)
    response.delete_cookie(COOKIE, path="/diary")
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    return _page(request, "diary_login.html", csrf="")


@router.post("/login")
async def login(request: Request, key: Annotated[str, Form()] = "") -> Response:
    """Open a session with the key (producer, packhouse, inspector: checked by the API)."""
    key = key.strip()
    if not _same_site(request):
        return _page(request, "diary_login.html", 403, error="Biểu mẫu không hợp lệ. / The form is not valid.", csrf="")
    if not _usable(key):
        return _page(request, "diary_login.html", 422, error="Nhập khóa API. / Enter your API key.", csrf="")
    try:
        opened = await _api(request, "POST", SESSIONS, token=key, bearer=True)
    except SignedOut:
        opened = None
    if opened is None or opened.status_code != 201:
        status = 401 if opened is None else opened.status_code
        return _page(
            request,
            "diary_login.html",
            status,
            csrf="",
            error="Khóa không hợp lệ hoặc không được ghi nhật ký. / This key may not keep a diary.",
        )
    settings = request.app.state.runtime.settings
    response = RedirectResponse("/diary", status_code=303)
    response.set_cookie(
        COOKIE,
        opened.json()["token"],
        max_age=int(settings.console_session_max_seconds),
        path="/diary",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" or settings.environment not in ("development", "test"),
    )
    return response


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    try:
        token = _checked(request, csrf)
        await _api(request, "DELETE", f"{SESSIONS}/current", token=token)
    except (SignedOut, PermissionError):
        pass
    return _to_login()


def _checked(request: Request, csrf: str) -> str:
    token = _token(request)
    expected = _csrf(request.app.state.runtime.settings.secret_key, token)
    if not _same_site(request) or not hmac.compare_digest(csrf.encode(), expected.encode()):
        raise PermissionError
    return token


async def _sites(request: Request, token: str) -> dict[str, list[dict[str, Any]]]:
    got = await _api(request, "GET", "/api/v1/epcis/sites", token=token)
    items = got.json().get("items", []) if got.status_code == 200 else []
    return {kind: [s for s in items if s["kind"] == kind] for kind in ("farm", "packhouse")}


@router.get("")
async def diary(request: Request) -> Response:
    """The forms: harvest at a farm, packing at a packhouse."""
    try:
        token = _token(request)
        sites = await _sites(request, token)
    except SignedOut:
        return _to_login()
    now = dt.datetime.now(VIETNAM).strftime("%Y-%m-%dT%H:%M")
    return _page(request, "diary.html", sites=sites, now=now, result=None, form={})


def _moment(local: str) -> str:
    """A `datetime-local` value, read in Vietnam's time (the page has no script to learn the phone's zone)."""
    try:
        return dt.datetime.fromisoformat(local).replace(tzinfo=VIETNAM).isoformat()
    except ValueError:
        return local


@router.post("/{kind}")
async def record(request: Request, kind: str) -> Response:
    """One diary entry, recorded through the API; the page shows the event's id and hash, or what to correct."""
    if kind not in ("harvest", "packing"):
        return Response(status_code=404)
    form = {k: str(v).strip() for k, v in (await request.form()).items()}
    try:
        token = _checked(request, form.pop("csrf", ""))
    except SignedOut:
        return _to_login()
    except PermissionError:
        return _page(
            request,
            "diary.html",
            403,
            sites={},
            now="",
            form=form,
            result={"error": "Biểu mẫu đã hết hạn; tải lại trang. / The form expired; reload the page."},
        )
    entry: dict[str, Any] = {"kind": kind, "at": _moment(form.get("at", "")), "site_gln": form.get("site_gln", "")}
    if kind == "harvest":
        entry |= {
            "gtin": form.get("gtin", ""),
            "lot": form.get("lot", ""),
            "quantity_kg": form.get("quantity_kg", ""),
            "area_ha": form.get("area_ha", ""),
        }
    else:
        entry |= {
            "sscc": form.get("sscc", ""),
            "lots": [
                {"gtin": form.get("gtin", ""), "lot": form.get("lot", ""), "quantity_kg": form.get("quantity_kg", "")}
            ],
        }
    try:
        made = await _api(request, "POST", "/api/v1/epcis/diary", token=token, json_body=entry)
        sites = await _sites(request, token)
    except SignedOut:
        return _to_login()
    now = dt.datetime.now(VIETNAM).strftime("%Y-%m-%dT%H:%M")
    if made.status_code in (200, 201):
        body = made.json()
        result = {"event_id": body.get("eventID"), "hash": made.headers.get("EPCIS-Event-Hash"), "kind": kind}
        return _page(
            request, "diary.html", 201 if made.status_code == 201 else 200, sites=sites, now=now, form={}, result=result
        )
    problem = made.json() if made.headers.get("content-type", "").endswith("json") else {}
    errors = [f"{e.get('pointer', '')}: {e.get('detail', '')}" for e in problem.get("errors", [])]
    result = {"error": problem.get("detail", "Không ghi được. / Not recorded."), "errors": errors}
    return _page(request, "diary.html", made.status_code, sites=sites, now=now, form=form, result=result)
