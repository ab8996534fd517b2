"""A GS1 Digital Link resolver for the buyer: `/00/{sscc}`, `/01/{gtin}/10/{lot}` and `/01/{gtin}` at the root.

The same URI a pallet's QR code carries answers JSON (`Accept: application/json` or `application/ld+json`: the trace,
each event's verification and its ledger bundle) or a public page (`text/html`: Vietnamese by default, Chinese or
English by `Accept-Language` or `?lang=`, no script). No key is needed. A malformed identifier or a wrong check
digit (biip) is a 400 problem, an identifier no event names a 404. Query-string attributes of GS1 Digital Link
(`?linkType=…`, `?17=…`) are ignored; only `lang` is read.

Proofs come from the provenance service over HTTP (`GET /api/v1/ledger/public-bundles`): a service never imports
another, and the ledger's own endpoint signs and chooses the checkpoint, so what the page shows is exactly what a
buyer fetching the bundle would get. In the one-process app the call is in-process (ASGI); in the distributed
deployment it goes to `SMARTGATE_TRACE_LEDGER_URL` (the provenance service or the gateway). The page verifies each
bundle (checkpoint signature, inclusion proof, payload digest) and that its payload names the event's CBV 2.0 hash,
recomputed from the stored event: only then is a fact "verified".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from starlette.responses import Response

from ledger import bundle as ledger_bundle
from ledger.verify import VerificationError
from ledger.witness import split_note
from services.kernel.database import unit_of_work
from services.kernel.errors import AppError, NotFound, ServiceUnavailable
from services.kernel.i18n import LANGUAGES, TAGS, catalog, language_of, negotiate
from services.kernel.responses import JSONResponse
from services.kernel.schemas import problems
from services.traceability import hashing, identifiers, trace
from services.traceability.endpoints import settings_of

HERE = Path(__file__).resolve().parent
LOCALE_DIR = HERE / "locale"
DOMAIN = "trace"
DEFAULT = "vi"
CHOICES = (("vi", "vi", "Tiếng Việt"), ("zh_Hans", "zh", "中文"), ("en", "en", "English"))
JSON_LD = "application/ld+json"
BUNDLES = "/api/v1/ledger/public-bundles"
CONTEXT = {"@vocab": "https://smartgate.example/trace#", "gs1": "https://gs1.org/voc/"}
STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1b1f23;background:#f6f7f9}"
    "header{background:#0b5d3b;color:#fff;padding:.8rem 1rem}header h1{font-size:1.2rem;margin:0}"
    "nav a{color:#fff;margin-right:.8rem}main{max-width:46rem;margin:0 auto;padding:1rem}"
    "section{background:#fff;border-radius:.5rem;padding:.8rem 1rem;margin:0 0 1rem;box-shadow:0 1px 2px #0002}"
    "h2{font-size:1.05rem;margin:.2rem 0 .5rem}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .8rem;"
    "margin:0}dt{color:#555}dd{margin:0;overflow-wrap:anywhere}ul{padding-left:1.2rem;margin:.3rem 0}"
    ".ok{color:#0b5d3b;font-weight:600}.pending{color:#8a5a00;font-weight:600}.bad{color:#b00020;font-weight:600}"
    "small,.muted{color:#555}code{font-size:.85em;overflow-wrap:anywhere}"
)
CSP = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    + "'; img-src 'none'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)

router = APIRouter(tags=["traceability"])
templates = Jinja2Templates(directory=HERE / "templates")


class InvalidIdentifier(AppError):
    status, title, type_slug = 400, "Invalid GS1 identifier", "gs1-identifier"


class NotAcceptable(AppError):
    status, title, type_slug = 406, "Not acceptable", "not-acceptable"


# --- parsing and negotiation ------------------------------------------------------------------------------------


def parse_key(kind: str, value: str, lot: str | None = None) -> trace.Key:
    """The key a Digital Link path names, check digit verified by biip; InvalidIdentifier if not valid."""
    try:
        if kind == "pallet":
            if not value.isdigit() or len(value) != 18:
                raise identifiers.IdentifierError(f"an SSCC has 18 digits, not {value[:40]!r}")
            return trace.Key("pallet", sscc=identifiers.sscc(value))
        if not value.isdigit() or len(value) not in (8, 12, 13, 14):
            raise identifiers.IdentifierError(f"a GTIN has 8, 12, 13 or 14 digits, not {value[:40]!r}")
        gtin = identifiers.gtin(value)
        if lot is None:
            return trace.Key("product", gtin=gtin)
        if not 1 <= len(lot) <= 20 or not lot.isascii() or not lot.isprintable():
            raise identifiers.IdentifierError("a lot number (AI 10) has 1 to 20 characters of the GS1 set")
        canonical = identifiers.canonical(f"{identifiers.ID_GS1}/01/{gtin}/10/{lot}")
        if canonical is None:
            raise identifiers.IdentifierError(f"not a GS1 lot: {lot[:40]!r}")
        return trace.Key("lot", gtin=gtin, lot=lot)
    except identifiers.IdentifierError as exc:
        what = "SSCC" if kind == "pallet" else "GTIN or lot"
        raise InvalidIdentifier(f"invalid {what}: {str(exc)[:200]}", code="trace.bad_identifier") from exc


def wants(accept: str | None) -> str:
    """`html`, `json` or `ld` for an Accept header (RFC 9110 q-values; html wins ties, as browsers ask)."""
    if not accept:
        return "json"
    best: dict[str, float] = {}
    for item in accept[:1000].split(","):
        media, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        kind = {
            "text/html": "html",
            "application/xhtml+xml": "html",
            "application/json": "json",
            JSON_LD: "ld",
            "application/*": "json",
            "*/*": "any",
        }.get(media.strip().lower())
        if kind:
            best[kind] = max(best.get(kind, 0.0), q)
    html, ld, js, anything = (best.get(k, 0.0) for k in ("html", "ld", "json", "any"))
    if html > 0 and html >= max(ld, js):
        return "html"
    if ld > 0 and ld >= js:
        return "ld"
    if js > 0 or anything > 0:
        return "json"
    raise NotAcceptable(
        "this resource is served as text/html, application/json or application/ld+json", code="trace.not_acceptable"
    )


# --- proofs from the ledger -------------------------------------------------------------------------------------


async def fetch_bundles(request: Request, subjects: list[str]) -> dict[str, Any]:
    """The ledger's public bundles of `subjects` against one checkpoint (in-process when this process runs the
    provenance service, else over HTTP to SMARTGATE_TRACE_LEDGER_URL); 503 when the ledger cannot answer."""
    runtime = request.app.state.runtime
    base = settings_of(runtime).trace_ledger_url
    transport: httpx.AsyncBaseTransport | None = None
    if "provenance" in runtime.extras:
        transport, base = httpx.ASGITransport(app=request.app), "http://smartgate.internal"
    if not base:
        raise ServiceUnavailable("the ledger is not reachable from here", code="trace.no_ledger")
    answer: dict[str, Any] = {"tree_size": 0, "bundles": [], "pending": []}
    try:
        async with httpx.AsyncClient(transport=transport, base_url=base.rstrip("/"), timeout=10.0) as client:
            for start in range(0, len(subjects), 200):
                part = subjects[start : start + 200]
                response = await client.get(BUNDLES, params=[("subject", s) for s in part])
                if response.status_code != 200:
                    raise ServiceUnavailable(
                        f"the ledger answered {response.status_code}",
                        code="trace.ledger_unavailable",
                        headers={"Retry-After": "5"},
                    )
                got = response.json()
                if answer["bundles"] and got["tree_size"] != answer["tree_size"]:
                    raise ServiceUnavailable(
                        "the ledger moved on meanwhile; retry", code="trace.ledger_moved", headers={"Retry-After": "1"}
                    )
                answer["tree_size"] = got["tree_size"]
                answer["bundles"] += got["bundles"]
                answer["pending"] += got["pending"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise ServiceUnavailable(
            "the ledger does not answer; try again shortly",
            code="trace.ledger_unavailable",
            headers={"Retry-After": "5"},
        ) from exc
    return answer


def _payload(bundle: dict[str, Any]) -> dict[str, Any]:
    try:
        found: dict[str, Any] = json.loads(base64.b64decode(bundle["entries"][-1]["payload"], validate=True))
        return found
    except (KeyError, IndexError, TypeError, ValueError, binascii.Error):
        return {}


def checkpoint_info(bundle: dict[str, Any], report: ledger_bundle.BundleReport) -> dict[str, Any]:
    """The checkpoint the facts were verified against: size, root, the log's key, witness cosignature lines."""
    _body, lines = split_note(bundle["checkpoint"].encode())
    log_name = report.checkpoint_key.split("+", 1)[0]
    witnesses = sorted(
        {line.split(" ")[1] for line in lines if line.count(" ") >= 2 and line.split(" ")[1] != log_name}
    )
    return {
        "origin": report.origin,
        "tree_size": report.tree_size,
        "root_hash": base64.b64encode(report.root_hash).decode(),
        "key": report.checkpoint_key,
        "witnesses": witnesses,
        "anchors": [
            {"chain_id": a.chain_id, "tx_hash": a.tx_hash, "block_number": a.block_number} for a in report.anchors
        ],
        "signed_note": bundle["checkpoint"],
    }


def verify(rows: dict[str, Any], answer: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
    """{event hash: verification} for the trace's events and the checkpoint they were verified against.

    An event is `verified` when its bundle verifies (checkpoint signature, inclusion proof, payload digest, one
    checkpoint for all), its payload names the stored event's hash, and that hash recomputes from the event."""
    results: dict[str, dict[str, Any]] = {}
    checkpoint: dict[str, Any] | None = None
    for bundle in answer["bundles"]:
        row = rows.get(bundle.get("subject"))
        if row is None:
            continue
        try:
            report = ledger_bundle.verify_bundle(bundle)
            if checkpoint is None:
                checkpoint = checkpoint_info(bundle, report)
            elif (report.tree_size, base64.b64encode(report.root_hash).decode()) != (
                checkpoint["tree_size"],
                checkpoint["root_hash"],
            ):
                raise VerificationError("bundles against different checkpoints")
            named = _payload(bundle).get("event_hash")
            if named != row.event_hash:
                raise VerificationError("the logged payload names another event hash")
            if hashing.event_hash(row.body, row.body.get("@context")) != row.event_hash:
                raise VerificationError("the stored event no longer hashes to its logged hash")
            results[row.event_hash] = {"status": "verified", "index": report.entries[-1], "tree_size": report.tree_size}
        except VerificationError as exc:
            results[row.event_hash] = {"status": "failed", "reason": str(exc)[:300]}
    for subject in answer["pending"]:
        if subject in rows:
            results.setdefault(rows[subject].event_hash, {"status": "pending"})
    for row in rows.values():
        results.setdefault(row.event_hash, {"status": "pending"})
    return results, checkpoint


# --- the routes -------------------------------------------------------------------------------------------------


def _load(request: Request, key: trace.Key) -> tuple[dict[str, Any], dict[str, Any]]:
    with unit_of_work(request.app.state.runtime.sessions) as session:
        found = trace.Trace(session, key)
        try:
            facts = found.build()
        except trace.NotTraced as exc:
            raise NotFound(f"no trace of {key.path}", code="trace.not_found") from exc
        rows = found.subjects()
        session.expunge_all()
    return facts, rows


async def resolve(request: Request, key: trace.Key) -> Response:
    """The trace of `key` as JSON or as the public page."""
    form = wants(request.headers.get("accept"))
    facts, rows = await run_in_threadpool(_load, request, key)
    answer = await fetch_bundles(request, sorted(rows))
    results, checkpoint = await run_in_threadpool(verify, rows, answer)
    facts["events"] = [
        {**trace.event_summary(row), "verification": results[row.event_hash]}
        for row in sorted(rows.values(), key=lambda r: (r.event_time, r.id))
    ]
    facts["checkpoint"] = checkpoint
    facts["verified"] = bool(rows) and all(r["status"] == "verified" for r in results.values())
    headers = {
        "Vary": "Accept, Accept-Language",
        "Cache-Control": "no-cache",
        "Link": f'<{key.uri}>; rel="owl:sameAs"',
        # Public data, readable by any site's script (GS1 Digital Link resolvers answer CORS with *).
        "Access-Control-Allow-Origin": "*",
    }
    if form != "html":
        facts["ledger_bundles"] = answer["bundles"]
        body = {"@context": CONTEXT, **facts} if form == "ld" else facts
        return JSONResponse(body, media_type=JSON_LD if form == "ld" else "application/json", headers=headers)
    lang = language_of(request.query_params.get("lang"), "") or negotiate(
        request.headers.get("accept-language"), DEFAULT
    )
    context = {"t": facts, "results": results, "lang": lang, "html_lang": TAGS[lang], "path": key.path, "style": STYLE}
    response = templates.TemplateResponse(request, "trace.html", context)
    response.headers.update(
        {
            **headers,
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Content-Language": TAGS[lang],
        }
    )
    return response


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the trace (JSON, JSON-LD) or the public trace page (HTML), by `Accept`",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            JSON_LD: {"schema": {"type": "object"}},
            "text/html": {"schema": {"type": "string"}},
        },
    },
    **problems(400, 404, 406, 422, 503),
}
Sscc = Annotated[str, PathParam(description="the pallet's SSCC (18 digits)", examples=["089300010000000017"])]
Gtin = Annotated[str, PathParam(description="the product's GTIN (8 to 14 digits)", examples=["08930001000018"])]
Lot = Annotated[str, PathParam(description="the lot number (GS1 AI 10)", examples=["LC2026A"])]


@router.get("/00/{sscc}", summary="A pallet's trace (GS1 Digital Link; public)", responses=RESPONSES)
async def resolve_pallet(request: Request, sscc: Sscc) -> Response:
    """Farm, diary, packing, phytosanitary certificate, declaration and gate exit of the pallet, each verified
    against the ledger: JSON by `Accept: application/json` or `application/ld+json`, the public page by `text/html`."""
    return await resolve(request, parse_key("pallet", sscc))


@router.get("/01/{gtin}/10/{lot}", summary="A lot's trace (GS1 Digital Link; public)", responses=RESPONSES)
async def resolve_lot(request: Request, gtin: Gtin, lot: Lot) -> Response:
    """The lot's farm and diary, the pallets it was packed onto and their inspection, shipping and exit."""
    return await resolve(request, parse_key("lot", gtin, lot))


@router.get("/01/{gtin}", summary="A product's lots (GS1 Digital Link; public)", responses=RESPONSES)
async def resolve_product(request: Request, gtin: Gtin) -> Response:
    """The product level of GS1 Digital Link: the lots harvested under the GTIN, newest first, each a link."""
    return await resolve(request, parse_key("product", gtin))


# --- the page's languages ---------------------------------------------------------------------------------------


def _lang(context: Any) -> str:
    value = context.get("lang")
    return value if value in LANGUAGES else DEFAULT


@pass_context
def _gettext(context: Any, message: str) -> str:
    return catalog(LOCALE_DIR, DOMAIN, _lang(context)).gettext(message)


@pass_context
def _ngettext(context: Any, singular: str, plural: str, n: int) -> str:
    return catalog(LOCALE_DIR, DOMAIN, _lang(context)).ngettext(singular, plural, n)


@pass_context
def _when(context: Any, stamp: Any) -> str:
    """An EPCIS time as the page's language writes it, in Vietnam's time."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from babel.dates import format_datetime

    try:
        moment = dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return str(stamp)
    return format_datetime(moment.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")), "medium", locale=_lang(context))


@pass_context
def _number(context: Any, value: Any) -> str:
    from babel.numbers import format_decimal

    return "" if value is None else format_decimal(value, locale=_lang(context))


templates.env.add_extension("jinja2.ext.i18n")
templates.env.install_gettext_callables(gettext=_gettext, ngettext=_ngettext, newstyle=True)  # type: ignore[attr-defined]
templates.env.globals.update(languages=CHOICES, tags=TAGS)
templates.env.filters.update(when=_when, number=_number)
