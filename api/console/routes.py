"""The review console: web pages where officers work the queue, decide, and look at gate holds and ledger proofs.

Every page is rendered from the platform's public REST API, called in-process as the signed-in officer: the console
holds no data and no rule of its own, authorisation is the API's, and what an officer does here is exactly what a
client of the API could do. Pages are plain HTML forms (no script at all), served with a strict
Content-Security-Policy.

Sessions (services/kernel/sessions.py): signing in sends the officer's API key once to the API, which opens a
server-side session and returns a random session id; the key is then forgotten. The browser's cookie (HttpOnly,
SameSite=Strict, path /console, Secure outside development and test) holds only that id; the database holds only
its SHA-256. The console calls the API on the officer's behalf with `Authorization: Console <id>.<HMAC of the id
under the deployment secret>`, which the API resolves to the session's key on every request (no cache): so a
database leak reveals no key and no usable session, a cookie lifted from a browser is no API credential outside
the console, and sign-out, the idle and absolute expiry, and a revoked key end the session at the next request.
This works the same in the distributed deployment, where the gateway serves the console without a database. Every
form carries a token derived from the session id (CSRF), so a form is good for that session only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import httpx
from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from api.console import i18n
from api.console.i18n import N_
from services.kernel import sessions
from services.kernel.i18n import TAGS

router = APIRouter(prefix="/console", include_in_schema=False)

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")  # autoescapes every value (Starlette's default)

COOKIE = "smartgate_console"
QUEUE_PAGE = 200  # the oldest first; a longer queue shows "200+"
ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Texts are English msgids of the console's catalog (api/console/locale/), translated where a page shows them.
OUTCOMES = {
    "clear": N_("Clear"),
    "request_documents": N_("Request documents"),
    "inspect": N_("Order physical inspection"),
    "reject": N_("Reject"),
}
NOTICES = {
    "clear": N_("Cleared."),
    "request_documents": N_("Documents requested from the trader."),
    "inspect": N_("Physical inspection ordered."),
    "reject": N_("Rejected."),
    "taken": N_("The declaration is yours to decide."),
    "on_duty": N_("You are on duty: new yellow and red declarations come to you in rotation."),
    "off_duty": N_("You are off duty: no new declarations are assigned to you."),
    "hold_released": N_("Hold lifted: the truck may go on."),
    "hold_escalated": N_("Hold escalated: the goods go to physical inspection in the red channel."),
}
STALE = N_(
    "This declaration changed since you opened it (the trader amended it, or someone acted on it), so your "
    "decision was not recorded. The page now shows it as it is: review it again, then decide."
)
# The gate's hold reasons that say something about the declaration, so that the hold raises its risk (the inspection
# service's MISMATCH_REASONS; the console knows the service by its API only, a test keeps the two equal).
MISMATCH_REASONS = frozenset(
    {
        "declaration_not_cleared",
        "container_not_on_declaration",
        "seal_mismatch",
        "one_substitution_match",
        "pallet_not_on_declaration",
        "pallet_unknown",
    }
)
SECURITY_HEADERS = {
    # No script, no frames, no third-party anything; forms post only to this origin.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


_PLAIN_HTTP = ("development", "test")
SESSIONS = "/api/v1/review/sessions"


class SignedOut(Exception):
    """The request carries no live session: send the browser to the login page."""


def _csrf(secret: str, key: str) -> str:
    return hmac.new(secret.encode(), b"console-csrf:" + key.encode(), hashlib.sha256).hexdigest()[:40]


def _usable(key: str) -> bool:
    """A string that can be an API key at all (it travels in an HTTP header: printable ASCII, bounded)."""
    return 0 < len(key) <= 200 and key.isascii() and key.isprintable()


def _key(request: Request) -> str:
    """The session id in the cookie (never an API key), or SignedOut."""
    key = request.cookies.get(COOKIE, "")
    if not _usable(key):
        raise SignedOut
    return key


async def _api(
    request: Request,
    method: str,
    path: str,
    *,
    key: str,
    params: dict[str, Any] | None = None,
    json_body: Any = None,
    bearer: bool = False,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Call the platform's REST API in-process as the officer (same middleware, auth and problem+json): `key` is
    the session id, or with `bearer` the API key itself (sign-in only)."""
    transport = httpx.ASGITransport(app=request.app)
    secret = request.app.state.runtime.settings.secret_key
    auth = f"Bearer {key}" if bearer else sessions.authorization(secret, key)
    # The API's problems come back in the officer's language (their `code` does not change).
    headers = {**(headers or {}), "Authorization": auth, "Accept-Language": TAGS[i18n.language(request)]}
    if rid := request.headers.get("x-request-id"):
        headers["X-Request-ID"] = rid
    async with httpx.AsyncClient(transport=transport, base_url="http://smartgate.internal") as client:
        response = await client.request(method, path, params=params, json=json_body, headers=headers)
    if response.status_code == 401:
        raise SignedOut
    return response


def _page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    key = request.cookies.get(COOKIE, "")
    runtime = request.app.state.runtime
    lang = i18n.language(request)
    context.setdefault("csrf", _csrf(runtime.settings.secret_key, key) if key else "")
    notice = NOTICES.get(request.query_params.get("done", ""))
    context.setdefault("notice", i18n.gettext(lang, notice) if notice else None)
    context.update(lang=lang, html_lang=TAGS[lang], here=i18n.here(request))
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Content-Language"] = TAGS[lang]
    return response


def _t(request: Request, message: str) -> str:
    """A console text in the officer's language."""
    return i18n.gettext(i18n.language(request), message)


def _problem_text(response: httpx.Response) -> dict[str, Any]:
    """What to show of an API error (its RFC 9457 title, detail and per-field errors)."""
    try:
        data = response.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    errors = data.get("errors")
    if not isinstance(errors, list):
        errors = []
    return {
        "status": response.status_code,
        "title": str(data.get("title", response.reason_phrase or response.status_code)),
        "detail": str(data.get("detail", "")),
        "errors": [
            f"{e.get('pointer', '')}: {e.get('detail', e.get('code', ''))}" for e in errors if isinstance(e, dict)
        ],
        "code": str(data.get("code", "")),
    }


def _same_site(request: Request) -> bool:
    """False for a form another site made the browser post (Fetch Metadata, else Origin): sign-in and sign-out have
    no token to check, and for the others it is a second lock."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.url.netloc}"


def _check_csrf(request: Request, token: str) -> str:
    if not _same_site(request):
        raise PermissionError
    key = _key(request)
    expected = _csrf(request.app.state.runtime.settings.secret_key, key)
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise PermissionError
    return key


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _to_login() -> Response:
    response = _see_other("/console/login")
    response.delete_cookie(COOKIE, path="/console")
    return response


def _forbidden(request: Request) -> Response:
    return _page(
        request,
        "error.html",
        403,
        problem={"status": 403, "title": _t(request, N_("Forbidden")),
                 "detail": _t(request, N_("The form expired or did not come from this console; reload the page and "
                                          "try again.")), "errors": []},
    )  # fmt: skip


# ---- sign in / out ----------------------------------------------------------------------------------------------


@router.get("/login")
async def login_form(request: Request) -> Response:
    """The sign-in page."""
    return _page(request, "login.html", csrf="")


@router.post("/login")
async def login(request: Request, key: Annotated[str, Form()] = "") -> Response:
    """Open a session with the key (officers only, checked by the API); the cookie gets the session id only."""
    if not _same_site(request):
        return _forbidden(request)
    key = key.strip()
    error = None
    status = 200
    token = ""
    invalid = N_("This key is not valid (or was revoked).")
    if not key:
        error, status = _t(request, N_("Enter your API key.")), 422
    elif not _usable(key):
        error, status = _t(request, invalid), 401
    else:
        try:
            opened = await _api(request, "POST", SESSIONS, key=key, bearer=True)
        except SignedOut:
            error, status = _t(request, invalid), 401
        else:
            if opened.status_code == 403:
                error = _t(request, N_("This key is not an officer's: the console is for customs officers."))
                status = 403
            elif opened.status_code != 201:
                error = _problem_text(opened)["detail"] or _t(request, N_("The platform could not check the key."))
                status = 502
            else:
                token = str(opened.json().get("token", ""))
    if error or not _usable(token):
        return _page(request, "login.html", status if error else 502,
                     error=error or _t(request, N_("The platform could not open a session.")), csrf="")  # fmt: skip
    settings = request.app.state.runtime.settings
    response = _see_other("/console")
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(settings.console_session_max_seconds),
        path="/console",
        httponly=True,
        samesite="strict",
        # Plain http only where the platform is served that way on purpose (development, tests); behind a TLS proxy
        # that does not forward the scheme, the cookie must still never travel in clear.
        secure=request.url.scheme == "https" or settings.environment not in _PLAIN_HTTP,
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session on the server (its id, even replayed, signs no one in) and forget it in this browser. The key
    itself stays valid until an admin revokes it."""
    if not _same_site(request):
        return _forbidden(request)
    try:
        await _api(request, "DELETE", f"{SESSIONS}/current", key=_key(request))
    except SignedOut:
        pass  # no cookie, or the session had already ended
    return _to_login()


# ---- the queue ----------------------------------------------------------------------------------------------------


@router.get("")
async def queue(
    request: Request,
    channel: str = "",
    status: str = "",
    assigned: str = "all",
) -> Response:
    """Yellow and red declarations waiting for a decision, oldest first, with filters."""
    try:
        key = _key(request)
        params: dict[str, Any] = {"assigned": assigned if assigned in ("me", "unassigned", "all") else "all"}
        if channel in ("yellow", "red"):
            params["channel"] = channel
        if status in ("submitted", "awaiting_documents", "inspection"):
            params["status"] = status
        params["limit"] = QUEUE_PAGE
        got, names = await asyncio.gather(
            _api(request, "GET", "/api/v1/review/queue", key=key, params=params), _officers(request, key)
        )
    except SignedOut:
        return _to_login()
    if got.status_code != 200:
        return _page(request, "error.html", got.status_code, problem=_problem_text(got))
    lang = i18n.language(request)
    rows = [{**_summary(d, names), "waiting": i18n.waiting(lang, d.get("submitted_at"))} for d in got.json()]
    return _page(request, "queue.html", rows=rows, filters=params, limit=QUEUE_PAGE)


async def _officers(request: Request, key: str) -> dict[str, str]:
    """Officer and supervisor key ids → their names (the key's label); {} if the API cannot say."""
    got = await _api(request, "GET", "/api/v1/review/officers", key=key)
    if got.status_code != 200:
        return {}
    return {o["key_id"]: o["label"] for o in got.json() if o.get("label")}


def officer_name(key_id: str | None, names: dict[str, str]) -> str:
    """An officer key id, or an actor `officer:<key id>`, by the officer's name when it has one."""
    if not key_id:
        return ""
    role, _, ident = key_id.rpartition(":")
    if role and role not in ("officer", "supervisor"):
        return key_id
    return names.get(ident, key_id)


def _summary(decl: dict[str, Any], names: dict[str, str] | None = None) -> dict[str, Any]:
    body = decl.get("body") or {}
    trader = body.get("consignee" if decl.get("kind") == "import" else "consignor") or {}
    reasons = (decl.get("risk") or {}).get("reasons") or []
    submitted = decl.get("submitted_at")
    return {
        "id": decl["id"],
        "number": decl.get("number") or "",
        "channel": decl.get("channel") or "",
        "status": decl.get("status", ""),
        "score": (decl.get("risk") or {}).get("score"),
        # Every hit, weightless ones too: a random selection (weight 0) is why a low score went red.
        "rules": [r.get("rule", "") for r in reasons],
        "trader": trader.get("name", ""),
        "kind": decl.get("kind", ""),
        "containers": [c.get("number", "") for c in body.get("containers", [])],
        "submitted_at": submitted,
        "assigned": officer_name(decl.get("assigned_officer"), names or {}) or "—",
        "duties": decl.get("duties_due_vnd"),
        "paid": decl.get("paid_vnd"),
        "goods": _goods(body),
        "plate": (body.get("transport") or {}).get("truck_plate", ""),
        "documents_provided_at": decl.get("documents_provided_at"),
    }


def _goods(body: dict[str, Any]) -> dict[str, Any]:
    """The first goods line (description, HS code) and how many lines there are."""
    items = body.get("items") or [{}]
    first = items[0] if isinstance(items[0], dict) else {}
    return {"description": first.get("description", ""), "hs_code": first.get("hs_code", ""), "lines": len(items)}


@router.post("/duty")
async def duty(request: Request, csrf: Annotated[str, Form()] = "", on_duty: Annotated[str, Form()] = "") -> Response:
    """Go on or off duty (on-duty officers receive new declarations in rotation)."""
    try:
        key = _check_csrf(request, csrf)
        got = await _api(request, "PUT", "/api/v1/review/duty", key=key, json_body={"on_duty": on_duty == "true"})
    except SignedOut:
        return _to_login()
    except PermissionError:
        return _forbidden(request)
    if got.status_code != 200:
        return _page(request, "error.html", got.status_code, problem=_problem_text(got))
    return _see_other("/console?done=" + ("on_duty" if on_duty == "true" else "off_duty"))


# ---- search and unpaid ---------------------------------------------------------------------------------------------

SEARCH_LIMIT = 50
NUMBER = re.compile(r"^[A-Za-z0-9-]{1,32}$")
CONTAINER = re.compile(r"^[A-Za-z0-9 ]{1,13}$")
PLATE = re.compile(r"^[A-Za-z0-9 .-]{1,20}$")


@router.get("/search")
async def search(request: Request, q: str = "") -> Response:
    """One box: a declaration number, a container number, a truck plate or part of a trader's name. Each reading
    that the text can be is asked of the API at once; the declarations found, newest first, say what matched."""
    q = " ".join(q.split())[:100]
    try:
        key = _key(request)
        asks: dict[str, dict[str, str]] = {}
        if NUMBER.fullmatch(q):
            asks["number"] = {"number": q}
        if CONTAINER.fullmatch(q) and len(q.replace(" ", "")) == 11:
            asks["container"] = {"container": q}
        if PLATE.fullmatch(q) and any(ch.isdigit() for ch in q):
            asks["plate"] = {"plate": q}
        if len(q) >= 2:
            asks["trader"] = {"trader": q}
        got, names = await asyncio.gather(
            asyncio.gather(
                *(
                    _api(request, "GET", "/api/v1/declarations", key=key, params={**p, "limit": SEARCH_LIMIT})
                    for p in asks.values()
                )
            ),
            _officers(request, key),
        )
    except SignedOut:
        return _to_login()
    found: dict[str, dict[str, Any]] = {}
    for field, answer in zip(asks, got, strict=True):
        if answer.status_code != 200:
            continue
        for d in answer.json().get("items", []):
            row = found.setdefault(d["id"], {**_summary(d, names), "created_at": d.get("created_at", ""), "by": []})
            row["by"].append(field)
    rows = sorted(found.values(), key=lambda r: r["created_at"], reverse=True)
    return _page(request, "search.html", q=q, rows=rows, searched=bool(q), limit=SEARCH_LIMIT)


@router.get("/unpaid")
async def unpaid(request: Request) -> Response:
    """Declarations customs cleared whose duties are not paid in full, newest first."""
    try:
        key = _key(request)
        got, names = await asyncio.gather(
            _api(request, "GET", "/api/v1/declarations", key=key, params={"unpaid": "true", "limit": 200}),
            _officers(request, key),
        )
    except SignedOut:
        return _to_login()
    if got.status_code != 200:
        return _page(request, "error.html", got.status_code, problem=_problem_text(got))
    rows = [_summary(d, names) for d in got.json().get("items", [])]
    for row in rows:
        row["owed"] = max(int(row["duties"] or 0) - int(row["paid"] or 0), 0)
    return _page(request, "unpaid.html", rows=rows, more=got.json().get("next_cursor") is not None)


# ---- the learned model's drift ---------------------------------------------------------------------------------------

DRIFT_WEEKS = (4, 12, 26, 52)
PSI_WARN = 0.25  # the drift report's threshold of a shifted score distribution (services/declarations/riskmodels.py)


@router.get("/drift")
async def drift(request: Request, weeks: int = 12) -> Response:
    """The learned model's weekly drift report (supervisors and admins): precision of the inspections the model
    selected beside the rules' own, the exploration hit rate, the score shift (PSI), and the alarms."""
    weeks = weeks if weeks in DRIFT_WEEKS else 12
    try:
        key = _key(request)
        got = await _api(request, "GET", "/api/v1/risk/models/drift", key=key, params={"weeks": weeks})
    except SignedOut:
        return _to_login()
    if got.status_code == 404:
        return _not_found(request, N_("the declarations service is not running in this process"))
    if got.status_code != 200:
        return _page(request, "error.html", got.status_code, problem=_problem_text(got))
    report = got.json()
    models = report.get("models", [])
    for model in models:
        for week in model.get("weeks", []):
            psi = week.get("psi")
            week["shifted"] = isinstance(psi, (int, float)) and psi > PSI_WARN
        model["alarms"] = sum(1 for w in model.get("weeks", []) if w.get("alarm") or w["shifted"])
    return _page(request, "drift.html", models=models, weeks=weeks, choices=DRIFT_WEEKS, psi_warn=PSI_WARN)


# ---- one declaration ----------------------------------------------------------------------------------------------


@router.get("/declarations/{declaration_id}")
async def declaration(request: Request, declaration_id: str) -> Response:
    """Everything an officer needs to decide: the goods, duties, risk reasons, history, documents, gate events and
    the ledger's proof of the declaration's history."""
    try:
        return await _declaration_page(request, declaration_id)
    except SignedOut:
        return _to_login()


async def _declaration_page(
    request: Request, declaration_id: str, *, problem: dict[str, Any] | None = None, form: dict[str, str] | None = None
) -> Response:
    if not ID.fullmatch(declaration_id):
        return _not_found(request, N_("no such declaration"))
    key = _key(request)
    base = f"/api/v1/declarations/{declaration_id}"
    got = await _api(request, "GET", base, key=key)
    if got.status_code != 200:
        return _page(request, "error.html", got.status_code, problem=_problem_text(got))
    decl = got.json()
    history, documents, events, ledger, names, partner = await asyncio.gather(
        _api(request, "GET", f"{base}/history", key=key),
        _api(request, "GET", f"{base}/documents", key=key),
        _api(request, "GET", "/api/v1/gate/events", key=key, params={"declaration_id": declaration_id}),
        _ledger_summary(request, key, declaration_id),
        _officers(request, key),
        _api(request, "GET", f"/api/v1/review/declarations/{declaration_id}/partner", key=key),
    )
    gate_events = events.json().get("items", []) if events.status_code == 200 else []
    for event in gate_events:
        event["image_links"] = _image_links(event)
    transitions = history.json().get("transitions", []) if history.status_code == 200 else []
    return _page(
        request,
        "declaration.html",
        problem["status"] if problem else 200,
        d=decl,
        body=decl.get("body") or {},
        history=_history(transitions, gate_events, declaration_id, names),
        versions=len(history.json().get("versions", [])) if history.status_code == 200 else 0,
        documents=documents.json() if documents.status_code == 200 else [],
        gate_events=gate_events,
        rates=_exchange_rates(decl.get("duties") or {}),
        assigned=officer_name(decl.get("assigned_officer"), names),
        ledger=ledger,
        outcomes={a: OUTCOMES[a] for a in decl.get("allowed_actions", []) if a in OUTCOMES},
        # Our lines beside the partner administration's (issue 14): absent when that service is not reachable.
        partner=partner.json() if partner.status_code == 200 else None,
        problem=problem,
        form=form or {},
    )


def _history(
    transitions: list[dict[str, Any]], gate_events: list[dict[str, Any]], declaration_id: str, names: dict[str, str]
) -> list[dict[str, Any]]:
    """The declaration's state changes, officers by name, with the gate holds that raised its risk (a mismatch
    reassesses the declaration, or sends it red, without a state change of its own), in time order."""
    rows = [{**t, "actor": officer_name(t.get("actor"), names), "gate": None} for t in transitions]
    for e in gate_events:
        match = e.get("match") or {}
        if e.get("decision") == "hold" and match.get("declaration_id") == declaration_id:
            if MISMATCH_REASONS & set(e.get("reasons") or []):
                actor = f"gate:{e.get('camera_id')}"
                # In the platform's order (when it received the capture), shown at the camera's time.
                rows.append({"at": e.get("taken_at", ""), "action": "gate_mismatch", "actor": actor, "gate": e,
                             "order": e.get("received_at", "")})  # fmt: skip
    rows.sort(key=lambda r: _instant(r.get("order") or r.get("at")))
    # The channel the declaration has now is the gate's doing if no reassessment (an amendment) came after.
    for row in reversed(rows):
        if row["gate"] is not None:
            row["channel_now"] = True
            break
        if row.get("action") in ("amend", "submit"):
            break
    return rows


def _instant(stamp: Any) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _exchange_rates(duties: dict[str, Any]) -> list[dict[str, Any]]:
    """The exchange rates the duty bill used (one per foreign currency), on its registration day."""
    seen: dict[str, Any] = {}
    for line in duties.get("lines") or []:
        currency = line.get("currency")
        if currency and currency != "VND" and currency not in seen:
            seen[currency] = line.get("vnd_per_unit")
    return [{"currency": c, "vnd": v, "day": duties.get("registration_date")} for c, v in seen.items()]


def _image_links(event: dict[str, Any]) -> list[str]:
    return [f"/console/gate/{event['id']}/images/{link.rsplit('/', 1)[-1]}" for link in event.get("images", [])]


async def _ledger_summary(request: Request, key: str, subject: str) -> dict[str, Any]:
    """The declaration's provenance bundle, verified here: which entries, which checkpoint, which anchors."""
    got = await _api(request, "GET", f"/api/v1/ledger/subjects/{subject}/bundle", key=key, params={"payloads": "false"})
    if got.status_code != 200:
        problem = _problem_text(got)
        if problem["code"] == "ledger.not_checkpointed":
            return {"state": "pending", "detail": problem["detail"]}
        return {"state": "unavailable", "detail": problem["detail"]}
    try:
        from ledger.bundle import verify_bundle
        from ledger.checkpoint import Verifier
    except ImportError:  # the ledger extra is not installed: show the download only
        return {"state": "unverified"}
    public_key = await _api(request, "GET", "/api/v1/ledger/public-key", key=key)
    try:
        trusted = Verifier.from_vkey(public_key.text.strip()) if public_key.status_code == 200 else None
        witnesses, quorum = _witness_policy(request)
        # Pinned to the log's own key: a bundle signed by any other key fails. CPU work, kept off the event loop.
        report = await run_in_threadpool(verify_bundle, got.content, trusted_key=trusted, witnesses=witnesses)
    except Exception as exc:  # noqa: BLE001 - a bundle that does not verify (any error) is shown as such, never hidden
        return {"state": "failed", "detail": str(exc)}
    if trusted is None:
        detail = N_("the log's public key is not available to check the signature against")
        return {"state": "failed", "detail": _t(request, detail)}
    return {
        "state": "verified",
        "entries": report.entries,
        "tree_size": report.tree_size,
        "root": report.root_hash.hex(),
        "anchors": [{"chain": a.chain_label, "block": a.block_number, "tx": a.tx_hash} for a in report.anchors],
        "witnesses": len(witnesses),
        "quorum": quorum,
        "cosigned": [
            {"name": c.witness.name, "at": dt.datetime.fromtimestamp(c.timestamp, dt.UTC).isoformat()}
            for c in report.cosignatures
        ],
    }


def _witness_policy(request: Request) -> tuple[list[Any], int]:
    """The witnesses the ledger submits to (`SMARTGATE_LEDGER_WITNESSES`) and the quorum, to show who cosigned."""
    try:
        from ledger.witness_client import parse_witnesses
        from services.provenance.settings import provenance_settings

        settings = provenance_settings(request.app.state.runtime.settings)
        endpoints = parse_witnesses(settings.ledger_witnesses)
    except (ImportError, ValueError):  # no ledger extra, or settings this process cannot read: show no witnesses
        return [], 0
    return [e.key for e in endpoints], settings.ledger_witness_quorum or len(endpoints)


@router.post("/declarations/{declaration_id}/decide")
async def decide(
    request: Request,
    declaration_id: str,
    csrf: Annotated[str, Form()] = "",
    outcome: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    violation: Annotated[str, Form()] = "",
    if_match: Annotated[str, Form()] = "",
) -> Response:
    """Record a decision through the API, on the version the page showed (its ETag travels as If-Match); on a
    refusal (409, 412, 422...) show the page again, as it is now, with the reason."""
    try:
        key = _check_csrf(request, csrf)
        if not ID.fullmatch(declaration_id):
            return await _declaration_page(request, declaration_id)
        payload: dict[str, Any] = {"outcome": outcome, "violation": violation == "on"}
        if reason.strip():
            payload["reason"] = reason.strip()
        # An ETag is a short quoted token: anything else is sent as nothing (the API's 428).
        tag = if_match if 0 < len(if_match) <= 100 and if_match.isascii() and if_match.isprintable() else ""
        got = await _api(request, "POST", f"/api/v1/declarations/{declaration_id}/decisions", key=key,
                         json_body=payload, headers={"If-Match": tag} if tag else None)  # fmt: skip
        if got.status_code == 200:
            return _see_other(f"/console/declarations/{declaration_id}?done={quote(outcome)}")
        problem = _problem_text(got)
        if got.status_code in (412, 428):
            # The page the officer decided on is not the declaration any more: show what it is now, and make the
            # officer choose again rather than resubmit the old choice.
            problem["detail"] = _t(request, STALE)
            return await _declaration_page(request, declaration_id, problem=problem, form={"reason": reason})
        return await _declaration_page(
            request, declaration_id, problem=problem, form={"outcome": outcome, "reason": reason}
        )
    except SignedOut:
        return _to_login()
    except PermissionError:
        return _forbidden(request)


@router.post("/declarations/{declaration_id}/take")
async def take(request: Request, declaration_id: str, csrf: Annotated[str, Form()] = "") -> Response:
    """Take an unassigned declaration (only its assignee or a supervisor decides one)."""
    try:
        key = _check_csrf(request, csrf)
        if not ID.fullmatch(declaration_id):
            return await _declaration_page(request, declaration_id)
        me = await _api(request, "GET", "/api/v1/review/duty", key=key)
        got = me
        if me.status_code == 200:
            got = await _api(request, "POST", f"/api/v1/declarations/{declaration_id}/assignment", key=key,
                             json_body={"officer_key_id": me.json()["officer_key_id"]})  # fmt: skip
        if got.status_code == 200:
            return _see_other(f"/console/declarations/{declaration_id}?done=taken")
        return await _declaration_page(request, declaration_id, problem=_problem_text(got))
    except SignedOut:
        return _to_login()
    except PermissionError:
        return _forbidden(request)


@router.get("/declarations/{declaration_id}/documents/{document_id}")
async def document(request: Request, declaration_id: str, document_id: str) -> Response:
    """A document the trader uploaded, always as a download: its bytes are the trader's, never a page of ours."""
    got = await _fetch(
        request,
        f"/api/v1/declarations/{declaration_id}/documents/{document_id}",
        valid=bool(ID.fullmatch(declaration_id) and ID.fullmatch(document_id)),
        missing=N_("no such document"),
    )
    if not isinstance(got, httpx.Response):
        return got
    return _download(got, fallback=f"document-{document_id}", media_type="application/octet-stream")


@router.get("/declarations/{declaration_id}/bundle")
async def bundle(request: Request, declaration_id: str) -> Response:
    """The declaration's provenance bundle (verify it offline with `smartgate ledger verify-bundle FILE`)."""
    got = await _fetch(
        request,
        f"/api/v1/ledger/subjects/{declaration_id}/bundle",
        valid=bool(ID.fullmatch(declaration_id)),
        missing=N_("no such declaration"),
    )
    return _download(got, fallback=f"bundle-{declaration_id}.json") if isinstance(got, httpx.Response) else got


async def _fetch(request: Request, path: str, *, valid: bool, missing: str) -> httpx.Response | Response:
    """GET an API resource as the signed-in officer: its response if 200, else the page to show instead (sign-in,
    not found, or the API's problem)."""
    try:
        key = _key(request)
        if not valid:
            return _not_found(request, missing)
        got = await _api(request, "GET", path, key=key)
    except SignedOut:
        return _to_login()
    if got.status_code != 200:
        return _page(request, "error.html", got.status_code, problem=_problem_text(got))
    return got


def _not_found(request: Request, detail: str) -> Response:
    """The console's own 404 page; `detail` is a msgid of the console's catalog."""
    return _page(request, "error.html", 404, problem={"status": 404, "title": _t(request, N_("Not found")),
                 "detail": _t(request, detail), "errors": []})  # fmt: skip


def _download(got: httpx.Response, *, fallback: str, media_type: str | None = None) -> Response:
    disposition = got.headers.get("content-disposition", "")
    if not disposition.startswith("attachment"):
        disposition = f'attachment; filename="{fallback}"'
    return Response(
        got.content,
        media_type=media_type or got.headers.get("content-type", "application/octet-stream"),
        headers={**SECURITY_HEADERS, "Content-Disposition": disposition,
                 "Content-Security-Policy": "default-src 'none'; sandbox"},
    )  # fmt: skip


# ---- the gate -------------------------------------------------------------------------------------------------


@router.get("/gate")
async def gate(request: Request, decision: str = "hold") -> Response:
    """Trucks the gate held (container or seal not matching a declaration, unreadable code...), newest first; a hold
    not yet resolved has the Release and Escalate buttons."""
    try:
        return await _gate_page(request, decision)
    except SignedOut:
        return _to_login()


async def _gate_page(
    request: Request, decision: str, *, problem: dict[str, Any] | None = None, form: dict[str, str] | None = None
) -> Response:
    key = _key(request)
    params = {"limit": 100, **({"decision": decision} if decision in ("hold", "proceed") else {})}
    got, names = await asyncio.gather(
        _api(request, "GET", "/api/v1/gate/events", key=key, params=params), _officers(request, key)
    )
    if got.status_code == 404:
        return _not_found(request, N_("the inspection service is not running in this process"))
    if got.status_code != 200:
        return _page(request, "error.html", got.status_code, problem=_problem_text(got))
    events = got.json().get("items", [])
    for event in events:
        event["image_links"] = _image_links(event)
        if event.get("resolution"):
            event["resolution"]["by"] = officer_name(event["resolution"].get("actor"), names)
    return _page(
        request,
        "gate.html",
        problem["status"] if problem else 200,
        events=events,
        decision=params.get("decision", ""),
        problem=problem,
        form=form or {},
    )


@router.post("/gate/{event_id}/resolve")
async def resolve_hold(
    request: Request,
    event_id: str,
    csrf: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Release or escalate a held truck through the API, with the officer's reason; on a refusal (no reason, already
    resolved, not allowed...) show the holds again with the API's reason."""
    try:
        key = _check_csrf(request, csrf)
        if not ID.fullmatch(event_id):
            return _not_found(request, N_("no such gate event"))
        payload = {"action": action, "reason": reason.strip()}
        got = await _api(request, "POST", f"/api/v1/gate/events/{event_id}/resolution", key=key, json_body=payload)
        if got.status_code == 201:
            done = "hold_released" if action == "release" else "hold_escalated"
            return _see_other(f"/console/gate?done={done}")
        return await _gate_page(
            request, "hold", problem=_problem_text(got), form={"event_id": event_id, "reason": reason}
        )
    except SignedOut:
        return _to_login()
    except PermissionError:
        return _forbidden(request)


@router.get("/gate/{event_id}/images/{sha256}")
async def gate_image(request: Request, event_id: str, sha256: str) -> Response:
    """A camera image of a gate event."""
    got = await _fetch(
        request,
        f"/api/v1/gate/events/{event_id}/images/{sha256}",
        valid=bool(ID.fullmatch(event_id) and SHA256.fullmatch(sha256)),
        missing=N_("no such image"),
    )
    if not isinstance(got, httpx.Response):
        return got
    if got.headers.get("content-type") not in ("image/jpeg", "image/png", "image/webp"):
        return Response(status_code=415)
    return Response(got.content, media_type=got.headers["content-type"], headers=SECURITY_HEADERS)


@router.post("/language")
async def switch_language(
    request: Request, lang: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/console"
) -> Response:
    """The officer's language (vi, en, zh), kept in a cookie for a year; back to the page the switch was on."""
    if not _same_site(request):
        return _forbidden(request)
    chosen = i18n.language_of(lang, i18n.default_language(request))
    response = _see_other(i18n.safe_next(next))
    settings = request.app.state.runtime.settings
    response.set_cookie(
        i18n.COOKIE,
        "zh" if chosen == "zh_Hans" else chosen,
        max_age=i18n.COOKIE_MAX_AGE,
        path="/console",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https" or settings.environment not in _PLAIN_HTTP,
    )
    return response


@router.get("/static/console.css")
async def stylesheet() -> FileResponse:
    """The console's only stylesheet."""
    return FileResponse(HERE / "static" / "console.css", media_type="text/css",
                        headers={"Cache-Control": "public, max-age=3600"})  # fmt: skip


def query(**params: Any) -> str:
    """A query string of the non-empty params (used by the templates' filter links)."""
    return urlencode({k: v for k, v in params.items() if v})


def pretty(value: Any) -> str:
    """A JSON value as indented text (for a payload an officer wants to read whole)."""
    return json.dumps(value, indent=2, ensure_ascii=False)


i18n.install(templates.env)
templates.env.globals.update(query=query, outcomes=OUTCOMES)
templates.env.filters.update(pretty=pretty)
