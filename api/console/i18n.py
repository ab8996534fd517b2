"""The console's languages: Vietnamese by default, English and Simplified Chinese on the officer's choice.

The choice is a cookie (`smartgate_lang`, a year, path /console), set by the language switch in every page's header;
without it the console is in Vietnamese, whatever the browser's Accept-Language says (the officers' workstations
are not always set up in their language). Texts come from the `console` domain (api/console/locale/), compiled in
memory at first use (services/kernel/i18n.py); the API's problems shown on a page come localised from the API,
asked in the same language. Dates and times are shown in Hanoi time, numbers and money as the language writes them
(Babel, CLDR data: VND has no decimals).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from babel.dates import format_date, format_datetime, format_timedelta
from babel.numbers import format_currency, format_decimal
from fastapi import Request
from jinja2 import pass_context

from services.kernel.administration import administration
from services.kernel.i18n import LANGUAGES, N_, TAGS, Catalog, catalog, language_of

__all__ = ["N_", "language_of"]

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "console"
# The console's language when neither the officer nor the administration profile says (default_language).
DEFAULT = "vi"
COOKIE = "smartgate_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
# What the switch shows: each language's name in itself, and the value its button posts.
CHOICES = (("vi", "vi", "Tiếng Việt"), ("en", "en", "English"), ("zh_Hans", "zh", "中文"))

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        HANOI: dt.tzinfo = ZoneInfo("Asia/Ho_Chi_Minh")
    except ZoneInfoNotFoundError:  # no tz database on the machine: Vietnam keeps UTC+7 all year
        HANOI = dt.timezone(dt.timedelta(hours=7), "ICT")
except ImportError:  # pragma: no cover - Python 3.9+ has zoneinfo
    HANOI = dt.timezone(dt.timedelta(hours=7), "ICT")

# Values the API sends as codes, as an officer reads them.
LABELS: dict[str, dict[str, str]] = {
    "status": {
        "draft": N_("draft"),
        "submitted": N_("submitted"),
        "awaiting_documents": N_("awaiting documents"),
        "inspection": N_("physical inspection"),
        "rejected": N_("rejected"),
        "cleared": N_("cleared"),
        "released": N_("goods released"),
        "exited": N_("exited the gate"),
        "cancelled": N_("cancelled"),
        "expired": N_("expired"),
    },
    "channel": {"green": N_("green channel"), "yellow": N_("yellow channel"), "red": N_("red channel")},
    "kind": {"import": N_("import"), "export": N_("export")},
    "model_state": {
        "stored": N_("stored"),
        "shadow": N_("in shadow"),
        "active": N_("active"),
        "retired": N_("retired"),
    },
    "mirror": {"quantity": N_("quantity"), "gross_mass_kg": N_("gross mass (kg)"), "origin": N_("origin")},
    "origin_check": {"verified": N_("verified"), "not_found": N_("not found"), "mismatch": N_("mismatch")},
    "action": {
        "create": N_("created"),
        "submit": N_("submitted"),
        "amend": N_("amended"),
        "cancel": N_("cancelled"),
        "assign": N_("assigned"),
        "reassign": N_("reassigned"),
        "clear": N_("cleared"),
        "request_documents": N_("documents requested"),
        "provide_documents": N_("documents provided"),
        "inspect": N_("physical inspection ordered"),
        "reject": N_("rejected"),
        "pay": N_("duties paid"),
        "release": N_("goods released"),
        "exit": N_("exited the gate"),
        "expire": N_("expired"),
        "channel_raised": N_("channel raised"),
        "gate_mismatch": N_("gate mismatch: risk reassessed"),
        "gate_release": N_("gate hold lifted: the truck went on"),
        "gate_escalate": N_("gate hold escalated: physical inspection"),
    },
    "resolution": {"release": N_("hold lifted"), "escalate": N_("escalated to physical inspection")},
    "decision": {"hold": N_("held"), "proceed": N_("proceeded")},
    "direction": {"in": N_("entry"), "out": N_("exit")},
    "reason": {
        "no_code_read": N_("no container code read"),
        "no_declaration": N_("no declaration for this container"),
        "declaration_not_cleared": N_("declaration not cleared"),
        "code_unverified": N_("container code not verified"),
        "container_not_on_declaration": N_("container not on the declaration"),
        "seal_mismatch": N_("seal does not match"),
        "one_substitution_match": N_("matched with one character different"),
        "pallet_not_on_declaration": N_("pallet belongs to another declaration"),
        "pallet_unknown": N_("pallet not on any declaration"),
    },
    "assigned": {"all": N_("all"), "me": N_("mine"), "unassigned": N_("unassigned")},
    "matched": {
        "number": N_("declaration number"),
        "container": N_("container number"),
        "plate": N_("truck plate"),
        "trader": N_("trader's name"),
    },
}


def default_language(request: Request) -> str:
    """The language of an officer who chose none: the administration's (Vietnamese at Kim Thành, Simplified Chinese
    at Hekou; services/kernel/administration.py)."""
    runtime = getattr(request.app.state, "runtime", None)
    settings = getattr(runtime, "settings", None)
    return administration(settings).default_locale if settings is not None else DEFAULT


def language(request: Request) -> str:
    """The officer's language: the cookie's choice, else the administration's default."""
    return language_of(request.cookies.get(COOKIE), default_language(request))


def texts(lang: str) -> Catalog:
    return catalog(LOCALE_DIR, DOMAIN, lang)


def gettext(lang: str, message: str) -> str:
    return texts(lang).gettext(message)


def safe_next(target: str) -> str:
    """A page of the console to go back to after switching language (never another site)."""
    parts = urlsplit(target or "")
    path = parts.path
    if parts.scheme or parts.netloc or not re.fullmatch(r"/console(/[\w.-]+)*", path) or "/." in path:
        return "/console"
    return path + (f"?{parts.query}" if parts.query else "")


def here(request: Request) -> str:
    """Where the language switch brings the officer back: this page, or for a form's answer the page of the form."""
    path = request.url.path
    if request.method != "GET":
        path = re.sub(r"/(decide|take)$", "", path) if path.startswith("/console/declarations/") else path
        path = "/console/gate" if path.startswith("/console/gate/") else path
        if path in ("/console/duty", "/console/logout", "/console/language"):
            path = "/console"
        return safe_next(path)
    return safe_next(path + (f"?{request.url.query}" if request.url.query else ""))


# ---- template callables (Jinja2's i18n extension, new style: `_("text %(n)s", n=1)`) -------------------------------


def _lang(context: Any) -> str:
    value = context.get("lang")
    return value if value in LANGUAGES else DEFAULT


@pass_context
def _gettext(context: Any, message: str) -> str:
    return texts(_lang(context)).gettext(message)


@pass_context
def _ngettext(context: Any, singular: str, plural: str, n: int) -> str:
    return texts(_lang(context)).ngettext(singular, plural, n)


@pass_context
def label(context: Any, value: Any, kind: str) -> str:
    """A code the API sends (status, channel, action...) in the page's language; an unknown code as it is."""
    if value is None or value == "":
        return ""
    text = LABELS.get(kind, {}).get(str(value))
    return texts(_lang(context)).gettext(text) if text else str(value).replace("_", " ")


@pass_context
def local(context: Any, stamp: Any) -> str:
    """An ISO timestamp as Hanoi time, to the minute, written as the language writes dates."""
    if not isinstance(stamp, str) or not stamp:
        return ""
    try:
        moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return format_datetime(moment, "short", tzinfo=HANOI, locale=_lang(context))


@pass_context
def day(context: Any, value: Any) -> str:
    """An ISO date as the language writes it."""
    try:
        return format_date(dt.date.fromisoformat(str(value)), "medium", locale=_lang(context))
    except ValueError:
        return str(value or "")


@pass_context
def number(context: Any, value: Any) -> str:
    """A number with the language's separators ('' for none)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str) or value == "":
        return "" if value is None else str(value)
    try:
        return format_decimal(value, locale=_lang(context))
    except (ValueError, ArithmeticError):
        return str(value)


@pass_context
def money(context: Any, value: Any, currency: str = "VND") -> str:
    """An amount in its currency as the language writes it (VND without decimals); '—' for none."""
    if isinstance(value, bool) or not isinstance(value, int | float | str) or value == "":
        return "—"
    try:
        return format_currency(value, currency or "VND", locale=_lang(context))
    except (ValueError, ArithmeticError):
        return f"{value} {currency}"


def waiting(lang: str, stamp: str | None) -> str:
    """How long since `stamp`, in the language: minutes, then hours and minutes, then days."""
    if not stamp:
        return ""
    try:
        seconds = (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))).total_seconds()
    except (ValueError, TypeError):
        return ""
    minutes = max(0, int(seconds // 60))

    def span(delta: dt.timedelta, unit: Literal["minute", "hour", "day"]) -> str:
        return format_timedelta(delta, granularity=unit, threshold=10**9, format="short", locale=lang)

    if minutes < 60:
        return span(dt.timedelta(minutes=minutes), "minute")
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{span(dt.timedelta(hours=hours), 'hour')} {span(dt.timedelta(minutes=minutes), 'minute')}"
    return span(dt.timedelta(days=hours // 24), "day")


def install(env: Any) -> None:
    """Jinja2's i18n extension, with callables that translate into the language of the page being rendered."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(gettext=_gettext, ngettext=_ngettext, newstyle=True)
    env.globals.update(languages=CHOICES, tags=TAGS)
    env.filters.update(label=label, local=local, day=day, number=number, money=money)
