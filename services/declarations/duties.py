"""Duty assessment of a declaration: customs value in VND, import duty (ACFTA or MFN), VAT, export duty."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

FORM_E_VALIDITY_DAYS = 365  # ACFTA Rules of Origin: a Form E is valid for 12 months from issue.

# Money bounds. Every amount reaches the ledger as a JSON integer, and RFC 8785 represents integers exactly only up
# to 2^53 - 1 (a JavaScript verifier hashes a larger one differently). A declaration's customs value stays below
# 10^13 VND (about 400 million USD, far above any truckload), tariff rates are at most 1000 % (tariff.py) and
# exchange rates at most 10^6 VND per unit, so duties stay below 1.3 * 10^15 VND and every sum far inside 2^53.
MAX_CUSTOMS_VALUE_VND = 10**13  # exclusive: the total customs value of a declaration, in VND
MAX_LINE_CUSTOMS_VALUE = Decimal(10**13)  # exclusive: one line's customs value in its own currency
MAX_VND_PER_UNIT = Decimal(1_000_000)  # inclusive: the strongest currency (KWD) is below 100,000 VND


@dataclass(frozen=True, slots=True)
class Rates:
    """The tariff rates of one HS code, in percent."""

    hs_code: str
    mfn: Decimal
    acfta: Decimal | None
    vat: Decimal
    export: Decimal
    status: str = "unverified"


@dataclass(slots=True)
class LineDuty:
    """The assessment of one goods line."""

    line: int
    hs_code: str
    customs_value: str
    currency: str
    vnd_per_unit: str | None
    value_vnd: int
    import_basis: str | None
    import_rate: str | None
    import_duty_vnd: int
    vat_rate: str | None
    vat_vnd: int
    export_rate: str | None
    export_duty_vnd: int
    total_vnd: int
    tariff_status: str | None
    problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class DutyBill:
    """Per-line breakdown and totals; `assessed` is False when a rate or a tariff line was missing."""

    assessed: bool
    registration_date: str
    form_e_applied: bool
    lines: list[LineDuty]
    import_duty_vnd: int
    vat_vnd: int
    export_duty_vnd: int
    total_vnd: int
    # The Form E verification the preference rests on (None: no claim, or a rule set that trusts the declaration);
    # bills stored before it existed lack the key.
    origin_check: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form stored with the declaration and returned by the API."""
        # Shallow copies field by field: dataclasses.asdict deep-copies and costs more than the assessment.
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["lines"] = [{f.name: getattr(line, f.name) for f in fields(line)} for line in self.lines]
        for line in out["lines"]:
            line["problems"] = list(line["problems"])
        return out


def vnd(amount: Decimal) -> int:
    """Round to whole dong, half up (the rounding of the tax administration)."""
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def too_large_lines(bill: DutyBill) -> list[int] | None:
    """None when the bill's customs value is within bounds; otherwise the 0-based lines at or above the bound by
    themselves (empty when only their sum is)."""
    if sum(line.value_vnd for line in bill.lines) < MAX_CUSTOMS_VALUE_VND:
        return None
    return [line.line - 1 for line in bill.lines if line.value_vnd >= MAX_CUSTOMS_VALUE_VND]


def form_e_valid(body: dict[str, Any], registration_date: dt.date) -> bool:
    """A Form E covers the declaration if issued on or before registration and not older than 12 months."""
    origin = body.get("preferential_origin")
    if not origin:
        return False
    issued = dt.date.fromisoformat(origin["issued_on"])
    return issued <= registration_date and (registration_date - issued).days <= FORM_E_VALIDITY_DAYS


def assess(
    body: dict[str, Any],
    *,
    registration_date: dt.date,
    tariff: dict[str, Rates],
    fx: dict[str, Decimal],
    origin_check: dict[str, Any] | None = None,
    form_e_origin: str = "CN",
) -> DutyBill:
    """Compute the duty bill of a declaration body (the stored JSON form).

    With `origin_check` (the verification of the Form E claim against the certificates the exporting
    administration sent, services/declarations/mirror.py), the ACFTA rate applies only when it is `verified`;
    without it, a declared Form E within its dates is trusted (rule sets with `form_e: declared`).

    `form_e_origin`: the country whose goods a Form E received here certifies, the exporting partner's (CN at Kim
    Thành, VN at Hekou); ACFTA applies to the lines of that origin."""
    importing = body["kind"] == "import"
    if origin_check is not None:
        form_e = importing and origin_check.get("status") == "verified"
    else:
        form_e = importing and form_e_valid(body, registration_date)
    lines: list[LineDuty] = []
    for i, item in enumerate(body["items"]):
        problems: list[str] = []
        currency = item["currency"]
        rate_fx = Decimal(1) if currency == "VND" else fx.get(currency)
        if rate_fx is None:
            problems.append(f"no exchange rate for {currency} on or before {registration_date}")
        rates = tariff.get(item["hs_code"])
        if rates is None:
            problems.append(f"HS {item['hs_code']} is not in the tariff")
        value_vnd = vnd(Decimal(item["customs_value"]) * rate_fx) if rate_fx is not None else 0
        basis = import_rate = vat_rate = export_rate = None
        import_duty = vat = export_duty = 0
        if rates is not None and rate_fx is not None:
            if importing:
                if form_e and item["origin"] == form_e_origin and rates.acfta is not None:
                    basis, rate = "ACFTA", rates.acfta
                else:
                    basis, rate = "MFN", rates.mfn
                import_rate = str(rate)
                import_duty = vnd(value_vnd * rate / 100)
                vat_rate = str(rates.vat)
                vat = vnd((value_vnd + import_duty) * rates.vat / 100)
            else:
                export_rate = str(rates.export)
                export_duty = vnd(value_vnd * rates.export / 100)
        lines.append(
            LineDuty(
                line=i + 1,
                hs_code=item["hs_code"],
                customs_value=str(item["customs_value"]),
                currency=currency,
                vnd_per_unit=str(rate_fx) if rate_fx is not None else None,
                value_vnd=value_vnd,
                import_basis=basis,
                import_rate=import_rate,
                import_duty_vnd=import_duty,
                vat_rate=vat_rate,
                vat_vnd=vat,
                export_rate=export_rate,
                export_duty_vnd=export_duty,
                total_vnd=import_duty + vat + export_duty,
                tariff_status=rates.status if rates else None,
                problems=problems,
            )
        )
    return DutyBill(
        assessed=not any(line.problems for line in lines),
        registration_date=registration_date.isoformat(),
        form_e_applied=form_e,
        lines=lines,
        import_duty_vnd=sum(x.import_duty_vnd for x in lines),
        vat_vnd=sum(x.vat_vnd for x in lines),
        export_duty_vnd=sum(x.export_duty_vnd for x in lines),
        total_vnd=sum(x.total_vnd for x in lines),
        origin_check=origin_check,
    )
