"""The learned fraud model at assessment: which models are deployed (active, shadow), how a platform declaration
becomes the model's items, its score and its reasons. Scoring uses onnxruntime only (riskmodel.scoring), imported
when a model is deployed: a platform without one never loads it.

What of a declaration maps onto the model's features (riskmodel/features.py), and what does not:

| model item field | from the declaration | |
| --- | --- | --- |
| hs6 | the line's HS code, first 6 digits | maps (HS6 is international) |
| origin | the line's origin (ISO 3166 alpha-2) | maps |
| departure | the consignor's country (road freight leaves from it) | maps, approximately |
| fta_claim, tax_type | Form E (ACFTA, China origin) → `FCN1`; none → `A` (basic rate) | closest KCS analogue |
| tax_rate | the import duty rate applied to the line (percent) | maps; levels differ by country |
| value, net_mass | the line's customs value in VND, in the model's currency at the day's rate; net mass | maps |
| date | the registration day (weekday) | maps |
| declarant | the filing organisation | our ids: unseen by a model trained on another data set |
| importer, seller | consignee's and consignor's tax ids (else names) | as above |
| office | the border gate | as above |
| courier, origin_indicator, import_type, import_use, payment_type, transport_mode | — | not declared: unseen |

So a model trained on the KCS data scores our declarations on goods, origin, route, FTA claim and value only; the
trader and office profiles start to count once a model is trained on our own inspected history.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.declarations.models import Declaration, RiskModel, RiskOutcome
from services.kernel.database import utcnow

if TYPE_CHECKING:
    from riskmodel.records import Item
    from riskmodel.scoring import Scorer

FORM_E_TAX_TYPE = "FCN1"  # KCS: Korea-China FTA rate; its partner is CN, like ACFTA's Form E into Viet Nam
BASIC_TAX_TYPE = "A"  # KCS: the basic (general) rate
CACHE_SECONDS = 30.0
UNMAPPED = ("courier", "origin_indicator", "import_type", "import_use", "payment_type", "transport_mode")

_scorers: dict[str, Scorer] = {}
_deployed: dict[str, tuple[float, list[Deployed]]] = {}
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Deployed:
    """A model in active or shadow mode, loaded."""

    version: str
    mode: str  # active | shadow
    sha256: str
    value_currency: str
    scorer: Scorer


@dataclass(slots=True)
class Scored:
    """One model's verdict on one declaration: its probability (None: unscored, `why`), and the riskiest line."""

    model: Deployed
    probability: float | None
    why: str = ""
    line: int = 0
    items: list[Item] = field(default_factory=list)

    def reasons(self, top: int = 3) -> list[dict[str, Any]]:
        """The features that raised the riskiest line's score most, in words (empty when it cannot explain)."""
        if self.probability is None or not self.items:
            return []
        out = []
        for r in self.model.scorer.explain([self.items[self.line]], top=top)[0]:
            entry = r.to_json()
            if r.feature.partition("_")[2] in UNMAPPED:
                entry["text"] += " (a field our declarations do not have)"
            out.append(entry)
        return out

    def record(self) -> dict[str, Any]:
        """What the confidential assessment record keeps of it."""
        out: dict[str, Any] = {"version": self.model.version, "mode": self.model.mode}
        if self.probability is None:
            out["unscored"] = self.why
        else:
            out |= {"probability": round(self.probability, 4), "line": self.line + 1}
        return out


def _db(session: Session) -> str:
    return _url_of(session.get_bind().engine)


@functools.lru_cache(maxsize=64)
def _url_of(engine: Any) -> str:
    return str(engine.url)


def scorer_of(sha256: str, data: Callable[[], bytes]) -> Scorer:
    """The scorer of a model file, loaded once per process (by content hash)."""
    from riskmodel.scoring import Scorer

    with _lock:
        hit = _scorers.get(sha256)
    if hit is None:
        hit = Scorer(data())
        with _lock:
            hit = _scorers.setdefault(sha256, hit)
    return hit


def forget() -> None:
    """Drop this process's view of which models are deployed (after a change of state)."""
    with _lock:
        _deployed.clear()


def deployed(session: Session) -> list[Deployed]:
    """The active model and the shadow model, as far as there are (cached CACHE_SECONDS per database: another
    process's activation is seen within that)."""
    key = _db(session)
    with _lock:
        hit = _deployed.get(key)
    if hit is not None and time.monotonic() - hit[0] <= CACHE_SECONDS:
        return hit[1]
    rows = session.execute(
        select(RiskModel.version, RiskModel.state, RiskModel.sha256, RiskModel.value_currency).where(
            RiskModel.state.in_(("active", "shadow"))
        )
    ).all()
    out = []
    for version, state, sha, currency in sorted(rows, key=lambda r: r[1] != "active"):
        scorer = scorer_of(sha, functools.partial(_data, session, version))
        out.append(Deployed(version, state, sha, currency, scorer))
    with _lock:
        _deployed[key] = (time.monotonic(), out)
    return out


def _data(session: Session, version: str) -> bytes:
    data = session.scalar(select(RiskModel.data).where(RiskModel.version == version))
    if data is None:  # pragma: no cover - deleted between two statements
        raise LookupError(f"risk model {version} vanished")
    return bytes(data)


def items_of(
    decl_id: str, body: dict[str, Any], bill: dict[str, Any], day: dt.date, value_per_unit: Decimal
) -> list[Item]:
    """The model's items of a declaration (one per goods line); `value_per_unit` is VND per unit of the model's
    currency (1 for VND)."""
    from riskmodel.records import Item

    consignor, consignee = body.get("consignor", {}), body.get("consignee", {})
    claim = FORM_E_TAX_TYPE if bill.get("form_e_applied") or body.get("preferential_origin") else ""
    lines = bill.get("lines", [])
    out = []
    for n, item in enumerate(body["items"]):
        line = lines[n] if n < len(lines) else {}
        value_vnd = Decimal(line.get("value_vnd") or 0)
        rate = line.get("import_rate")
        out.append(
            Item(
                id=f"{decl_id}:{n + 1}",
                date=day,
                office=body.get("border_gate", ""),
                declarant=str(body.get("_organisation", "")),
                importer=consignee.get("tax_id") or consignee.get("name", ""),
                seller=consignor.get("tax_id") or consignor.get("name", ""),
                courier="",
                hs6=item["hs_code"][:6],
                origin=item["origin"],
                departure=consignor.get("country", ""),
                tax_rate=float(rate) if rate not in (None, "") else 0.0,
                tax_type=claim or BASIC_TAX_TYPE,
                fta_claim=claim,
                origin_indicator="",
                net_mass=float(item["net_mass_kg"]),
                value=float(value_vnd / value_per_unit),
            )
        )
    return out


def score(
    models: list[Deployed],
    decl: Declaration,
    bill: dict[str, Any],
    day: dt.date,
    fx: Callable[[str], Decimal | None],
) -> list[Scored]:
    """Each deployed model's probability for the declaration: its riskiest line's. Unscored (with the reason)
    when the model cannot read it: an export, duties not assessed, or no exchange rate to the model's currency."""
    out = []
    for model in models:
        if decl.kind != "import":
            out.append(Scored(model, None, "the model scores import declarations only"))
            continue
        if not bill.get("assessed"):
            out.append(Scored(model, None, "duties not assessed: the declared values are not in VND"))
            continue
        per_unit = Decimal(1) if model.value_currency == "VND" else fx(model.value_currency)
        if per_unit is None or per_unit <= 0:
            out.append(Scored(model, None, f"no {model.value_currency} exchange rate for {day.isoformat()}"))
            continue
        body = {**decl.body, "_organisation": decl.organisation_id}
        items = items_of(decl.id, body, bill, day, per_unit)
        probabilities = model.scorer.score(items)
        line = int(probabilities.argmax())
        out.append(Scored(model, float(probabilities[line]), line=line, items=items))
    return out


def record_outcome(
    session: Session, decl: Declaration, *, outcome: str, violation: bool, after_inspection: bool
) -> None:
    """Keep an officer's final decision (clear or reject) on a reviewed declaration as its label."""
    row = session.get(RiskOutcome, decl.id)
    if row is None:
        session.add(RiskOutcome(declaration_id=decl.id, outcome=outcome, violation=violation,
                                after_inspection=after_inspection, decided_at=utcnow()))  # fmt: skip
    else:
        row.outcome, row.violation, row.after_inspection, row.decided_at = (
            outcome,
            violation,
            after_inspection,
            utcnow(),
        )
