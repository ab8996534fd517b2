"""The event catalogue: every event type the services publish, with a versioned pydantic model of its payload.

Events are the contract between services (the outbox, the NATS subjects, the ledger's leaves and the webhooks all
carry them), so their shapes live here, in the kernel that every service imports, and nowhere else:

- producers: `outbox.event_row` checks each payload against its type's model before it is written, and refuses a
  type that is not catalogued or a payload with a missing, mistyped or unknown field (a test, not a reader,
  finds the drift);
- consumers: `read(event, Model)` gives the typed payload (None, logged, for another type or a malformed one: a
  consumer skips it rather than stop its queue); it ignores fields it does not know, so an event written by a
  newer producer is still read, and fields added later have defaults, so an older event is read too
  (`model_fields_set` tells whether the producer sent one);
- the webhooks service offers the types marked `trader_facing`; `docs/events.md` is generated from here
  (`python -m services.kernel.catalogue > docs/events.md`, and a test fails when it is stale).

Versioning: a payload may gain optional fields within its version. A change that removes, renames or retypes a
field is a new version (`VERSION` + 1) and consumers read both until the old one is gone from every outbox and
stream. The ledger keeps old payloads for ever: readers of the ledger never assume the current model.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

if TYPE_CHECKING:
    from services.kernel.outbox import Event

Channel = Literal["green", "yellow", "red"]
P = TypeVar("P", bound="Payload")
logger = logging.getLogger("smartgate.catalogue")


class Payload(BaseModel):
    """Base of every event payload model."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    TYPES: ClassVar[tuple[str, ...]] = ()
    VERSION: ClassVar[int] = 1
    PRODUCER: ClassVar[str] = ""
    # Offered to traders' webhooks (and so readable by the declaration's organisation): a `Routed` model, whose
    # event reaches the webhooks of the organisation it names.
    TRADER_FACING: ClassVar[bool] = False


class Routed(Payload):
    """An event that may concern one organisation's declaration: when `organisation_id` is set, it may reach that
    organisation's webhooks (the webhooks service routes on this base)."""

    organisation_id: str | None = None


class Owned(Routed):
    """An event about something of one organisation (a declaration): it may reach that organisation's webhooks."""

    organisation_id: str


class ContainerRef(BaseModel):
    """A container the declaration names, with its seals (what the gate matches)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    number: str
    seals: list[str] = []


class DeclarationStep(Owned):
    """A declaration changed status: one type per verb. Staff are named by role (`customs officer`), traders'
    own keys and systems (`system:risk`, `gate:…`) as recorded."""

    TYPES = tuple(
        f"declaration.{verb}"
        for verb in (
            "created",
            "submitted",
            "amended",
            "cancelled",
            "cleared",
            "released",
            "exited",
            "expired",
            "documents_requested",
            "documents_provided",
            "inspection_ordered",
            "rejected",
        )
    )
    PRODUCER = "declarations"
    TRADER_FACING = True

    declaration_id: str
    number: str | None
    status: str
    version: int
    body_sha256: str
    actor: str
    reason: str | None
    at: str
    # Added after the first events were written: an older event lacks them (`model_fields_set` says whether the
    # producer sent them). Producers always send every field (`check`).
    containers: list[ContainerRef] = []
    truck_plate: str | None = None


class DeclarationAssessed(Owned):
    """Duties and channel at registration or after an amendment; the score, rule hits and draw stay with customs
    and are committed to by `assessment_sha256` (a salted SHA-256)."""

    TYPES = ("declaration.assessed",)
    PRODUCER = "declarations"
    TRADER_FACING = True

    declaration_id: str
    number: str | None
    version: int
    body_sha256: str
    channel: Channel
    assessment_sha256: str
    duties_total_vnd: int
    duties_assessed: bool


class DeclarationAssigned(Payload):
    """The declaration went to an officer's queue, or was reassigned (which officers: in the history, not here)."""

    TYPES = ("declaration.assigned",)
    PRODUCER = "declarations"

    declaration_id: str
    reassigned: bool
    actor: str


class _PaymentAbout(Owned):
    declaration_id: str
    number: str | None
    payment_id: str
    amount_vnd: int


class DeclarationPaid(_PaymentAbout):
    """The treasury confirmed a payment: it counts towards the duties (the bank reference only as its SHA-256)."""

    TYPES = ("declaration.paid",)
    PRODUCER = "declarations"
    TRADER_FACING = True

    bank_reference_sha256: str
    paid_vnd: int
    due_vnd: int
    recorded_by: str
    actor: str


class DeclarationPaymentRejected(_PaymentAbout):
    """The treasury found no such money: the trader's claim never counts."""

    TYPES = ("declaration.payment_rejected",)
    PRODUCER = "declarations"
    TRADER_FACING = True

    reason: str
    actor: str


class RuleSetActivated(Payload):
    """An admin switched new registrations to another risk rule set."""

    TYPES = ("risk.rule_set_activated",)
    PRODUCER = "declarations"

    version: str
    sha256: str
    actor: str


class RiskModelChanged(Payload):
    """An admin stored a learned risk model, put it in shadow, activated it, or rolled back to the one before
    (`version`: the model now in that state; null after a rollback to the rules alone; `previous`: the model
    active before)."""

    TYPES = ("risk.model_stored", "risk.model_shadowed", "risk.model_activated", "risk.model_rolled_back")
    PRODUCER = "declarations"

    version: str | None
    sha256: str | None
    actor: str
    previous: str | None = None


class CodeRead(BaseModel):
    """A container code as read at the gate and how far it was verified (ISO 6346 check digit)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    code: str
    status: str


class _GateAbout(Routed):
    gate_event_id: str
    lane: str
    direction: str
    camera_id: str
    taken_at: str
    declaration_id: str | None
    declaration_number: str | None
    # The organisation of the declaration matched (the trader whose webhooks receive the event), null when none
    # matched or the gate did not know it yet. Added after the first events were written: an older one lacks it.
    organisation_id: str | None = None


class GateRead(_GateAbout):
    """A truck passed a gate camera: what was read, how it matched a declaration, and the decision (images by
    digest only). Its trader receives the trader-safe part (no camera, images or OCR detail)."""

    TYPES = ("gate.read",)
    PRODUCER = "inspection"
    TRADER_FACING = True

    codes: list[CodeRead]
    match: str
    matched_container: str | None
    decision: str
    reasons: list[str]
    image_sha256s: list[str]


class GateMismatch(_GateAbout):
    """What the gate read does not match the declaration it concerns (raises the declaration's risk)."""

    TYPES = ("gate.mismatch",)
    PRODUCER = "inspection"
    TRADER_FACING = True

    reasons: list[str]
    match: str
    codes: list[CodeRead]


class GateExited(_GateAbout):
    """A truck with a cleared declaration left through the gate."""

    TYPES = ("gate.exited",)
    PRODUCER = "inspection"
    TRADER_FACING = True


class GateHoldResolved(_GateAbout):
    """An officer resolved a gate hold: `gate.hold_released` (the truck goes on as it would have without the hold;
    the declaration's raised channel stays) or `gate.hold_escalated` (the goods go to physical inspection in the red
    channel). Staff named by role (`actor`), as in declaration events. Not offered to traders' webhooks: what the
    trader must know follows on its declaration's own events (`declaration.inspection_ordered` with the reason,
    `gate.exited`)."""

    TYPES = ("gate.hold_released", "gate.hold_escalated")
    PRODUCER = "inspection"

    reasons: list[str]
    action: Literal["release", "escalate"]
    reason: str
    actor: str
    at: str


class EpcisEventCaptured(Payload):
    """An EPCIS 2.0 event entered the traceability repository: its CBV 2.0 event hash, which the ledger commits to
    (the event itself stays in the repository; `GET /api/v1/epcis/events/{event_id}`)."""

    TYPES = ("epcis.event_captured",)
    PRODUCER = "traceability"

    event_id: str
    event_hash: str
    event_type: str
    event_time: str
    biz_step: str | None
    capture_id: str | None
    actor: str


class PartyRef(BaseModel):
    """A consignor, consignee, exporter or importer as a declaration or certificate names it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    address: str
    country: str
    tax_id: str | None = None


class GoodsLine(BaseModel):
    """One goods line as exchanged with the partner administration (decimals as strings, never floats)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    hs_code: str
    description: str
    origin: str
    quantity: str
    unit: str
    gross_mass_kg: str
    net_mass_kg: str
    customs_value: str
    currency: str


class DeclarationExportNotice(Payload):
    """An export declaration was registered (or amended after registration): everything the partner
    administration's pre-arrival notice needs (issue 14). Customs-to-customs, never offered to webhooks."""

    TYPES = ("declaration.export_notice",)
    PRODUCER = "declarations"

    declaration_id: str
    number: str
    version: int
    procedure_code: str
    border_gate: str
    consignor: PartyRef
    consignee: PartyRef
    items: list[GoodsLine]
    total_gross_mass_kg: str
    containers: list[ContainerRef]
    truck_plate: str
    trailer_plate: str | None
    expected_crossing: str
    origin_certificate: str | None
    at: str


class DeclarationCrossed(Payload):
    """The truck of a declaration left our gate: `exit` from the country for an export, `entry` for an import;
    `consignment_reference` is the exporting side's declaration number (ours for an export, the partner's
    reference the importer named for an import; null when none)."""

    TYPES = ("declaration.crossed",)
    PRODUCER = "declarations"

    declaration_id: str
    number: str | None
    kind: str
    consignment_reference: str | None
    direction: Literal["exit", "entry"]
    border_gate: str
    truck_plate: str | None
    containers: list[ContainerRef]
    at: str


class ControlFinding(BaseModel):
    """One finding of a control: a rule (mirror discrepancy, unverified origin, inspection) with its evidence."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    code: str
    detail: str
    line: int | None = None
    ours: str | None = None
    theirs: str | None = None


class DeclarationControlResult(Payload):
    """What customs found about a consignment, to share with the partner administration: an officer's decision
    after a physical inspection, or the mirror check of our declaration against the partner's data."""

    TYPES = ("declaration.control_result",)
    PRODUCER = "declarations"

    declaration_id: str
    number: str | None
    kind: str
    consignment_reference: str | None
    outcome: str
    findings: list[ControlFinding]
    decided_by: str
    at: str


class OriginCertificateIssued(Payload):
    """An ACFTA Form E was issued on our (exporting) side: the certificate as sent to the importing side."""

    TYPES = ("exchange.origin_certificate_issued",)
    PRODUCER = "exchange"

    number: str
    recipient: str | None
    certificate: dict[str, Any]
    actor: str


class ExchangeReceived(Payload):
    """A message of the partner administration was received, verified and stored: its content, for the services
    that keep their own view of it (declarations: the partner's consignments, certificates, crossings, controls)."""

    TYPES = (
        "exchange.pre_arrival_received",
        "exchange.origin_certificate_received",
        "exchange.crossing_received",
        "exchange.control_result_received",
    )
    PRODUCER = "exchange"

    message_id: str
    sender: str
    correlation_id: str
    created_at: str
    received_at: str
    payload: dict[str, Any]


class ExchangeMessageLogged(Payload):
    """A message or a receipt crossed the border (services/exchange, docs/exchange.md): sent by us or received from
    the partner administration. Hashes only: the ledgers of both sides commit to the same JWS bytes, whose content
    stays in the exchange service."""

    TYPES = (
        "exchange.message_sent",
        "exchange.message_received",
        "exchange.receipt_sent",
        "exchange.receipt_received",
    )
    PRODUCER = "exchange"

    message_id: str
    # preArrival, originCertificate, crossing, controlResult, receipt
    message_type: str
    sender: str
    recipient: str
    correlation_id: str
    # sha256:<hex> of the compact JWS bytes.
    jws_sha256: str
    # For receipts: the message acknowledged and what the receiver did with it.
    ref_message_id: str | None = None
    status: str | None = None


class TraceLine(BaseModel):
    """A goods line's references to the traceability repository, with what it declares."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    line: int
    hs_code: str
    net_mass_kg: str
    gtin: str
    ssccs: list[str] = []
    lots: list[str] = []


class DeclarationTraceRequested(Payload):
    """A registered declaration (or its amendment) names pallets and lots of the traceability repository: the
    traceability service checks them and answers with `trace.checked`. Not sent to webhooks."""

    TYPES = ("declaration.trace_requested",)
    PRODUCER = "declarations"

    declaration_id: str
    number: str | None
    version: int
    kind: str
    # Country of the consignee (where export goods go): fresh fruit for CN needs registered sites.
    destination: str | None
    lines: list[TraceLine]


class TraceFinding(BaseModel):
    """One failed trace-check rule (`trace_*`, a risk hit) or one anomaly flag (advisory), explained in words, with
    the facts it rests on."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    code: str
    line: int | None
    detail: str
    evidence: dict[str, Any] = {}


class TraceChecked(Payload):
    """The traceability service checked a declaration's pallets and lots against the farm diaries and packing
    records: the failed rules (risk hits), the anomaly flags (never blocking) and the pallets the declaration
    draws on (the gate matches pallet QR codes against them). Customs only: its ledger subject is
    `trace-check:{declaration_id}`, never the declaration's."""

    TYPES = ("trace.checked",)
    PRODUCER = "traceability"

    declaration_id: str
    version: int
    failures: list[TraceFinding]
    flags: list[TraceFinding]
    pallets: list[str]
    checked_at: str


MODELS: tuple[type[Payload], ...] = (
    DeclarationStep,
    DeclarationAssessed,
    DeclarationAssigned,
    DeclarationPaid,
    DeclarationPaymentRejected,
    RuleSetActivated,
    RiskModelChanged,
    GateRead,
    GateMismatch,
    GateExited,
    GateHoldResolved,
    EpcisEventCaptured,
    DeclarationExportNotice,
    DeclarationCrossed,
    DeclarationControlResult,
    OriginCertificateIssued,
    ExchangeReceived,
    ExchangeMessageLogged,
    DeclarationTraceRequested,
    TraceChecked,
)
CATALOGUE: dict[str, type[Payload]] = {t: m for m in MODELS for t in m.TYPES}
TRADER_FACING: tuple[str, ...] = tuple(t for t, m in CATALOGUE.items() if m.TRADER_FACING)


# Tests of the transport itself (outbox, bus, consumers' tolerance of partial or old payloads) switch the producer
# check off; nothing else does.
ENFORCE = True


class UncataloguedEvent(ValueError):
    """An event type without a model, or a payload its model refuses (a producer's bug)."""


def check(type_: str, payload: dict[str, Any]) -> None:
    """Refuse a payload that its type's model does not describe exactly (missing, mistyped or unknown fields)."""
    if not ENFORCE:
        return
    model = CATALOGUE.get(type_)
    if model is None:
        raise UncataloguedEvent(f"event type {type_!r} is not in services/kernel/catalogue.py")
    unknown = payload.keys() - model.model_fields.keys()
    if unknown:
        raise UncataloguedEvent(f"{type_}: fields not in {model.__name__}: {sorted(unknown)}")
    # Defaults let consumers read events written before a field existed; a producer sends every field.
    missing = model.model_fields.keys() - payload.keys()
    if missing:
        raise UncataloguedEvent(f"{type_}: fields of {model.__name__} missing: {sorted(missing)}")
    try:
        model.model_validate(payload)
    except ValidationError as exc:
        raise UncataloguedEvent(f"{type_}: payload does not match {model.__name__}: {exc}") from exc


def parse(event: Event) -> Payload:
    """The typed payload of an event (fields the model does not know are ignored)."""
    model = CATALOGUE.get(event.type)
    if model is None:
        raise UncataloguedEvent(f"event type {event.type!r} is not in services/kernel/catalogue.py")
    return model.model_validate(event.payload)


def read(event: Event, model: type[P]) -> P | None:
    """What a consumer reads: the event's payload as `model` (the model of its type, or a base of it), or None
    (logged) when the type is another's or the payload does not validate. A consumer must not stop its queue for
    one malformed event: it skips it, and the warning names the event for whoever fixes the producer."""
    catalogued = CATALOGUE.get(event.type)
    if catalogued is None or not issubclass(catalogued, model):
        return None
    try:
        parsed: P = catalogued.model_validate(event.payload)
        return parsed
    except ValidationError as exc:
        logger.warning(
            "event skipped: payload does not match its model",
            extra={"event_id": event.id, "event_type": event.type, "model": catalogued.__name__,
                   "errors": exc.error_count()},
        )  # fmt: skip
        return None


def _type_name(annotation: Any) -> str:
    """A field's type as the docs show it: `str or null`, `list[ContainerRef]`, `'green', 'yellow' or 'red'`."""
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    text = re.sub(r"\b(?:[A-Za-z_]\w*\.)+(\w+)", r"\1", text)  # module paths out
    text = re.sub(r"Literal\[(.*)\]", lambda m: m.group(1).replace(", ", " / "), text)
    return text.replace(" | None", " or null").replace("NoneType", "null")


def markdown() -> str:
    """docs/events.md: every event type, who publishes it, whether traders receive it, and its fields."""
    out = [
        "# Events",
        "",
        "Generated from `services/kernel/catalogue.py` by `python -m services.kernel.catalogue > docs/events.md`;",
        "`tests/services/kernel/test_catalogue.py` fails when this file is stale. Every event travels as",
        "`{id, type, subject, payload, occurred_at}` (outbox, NATS subject `smartgate.<type>`, ledger entry);",
        "below is the payload of each type. Traders' webhooks offer the types marked *webhook*.",
        "",
        "| type | version | producer | webhook | model |",
        "| --- | --- | --- | --- | --- |",
    ]
    for type_, model in CATALOGUE.items():
        hook = "yes" if model.TRADER_FACING else "no"
        link = f"[{model.__name__}](#{model.__name__.lower()})"
        out.append(f"| `{type_}` | {model.VERSION} | {model.PRODUCER} | {hook} | {link} |")
    documented: tuple[type[BaseModel], ...] = (
        *MODELS,
        ContainerRef,
        CodeRead,
        PartyRef,
        GoodsLine,
        ControlFinding,
        TraceLine,
        TraceFinding,
    )
    for shape in documented:
        out += ["", f"## {shape.__name__}", "", " ".join((shape.__doc__ or "").split()), ""]
        if issubclass(shape, Payload):
            out += [f"Types: {', '.join(f'`{t}`' for t in shape.TYPES)}.", ""]
        out += ["| field | type | required |", "| --- | --- | --- |"]
        for name, info in shape.model_fields.items():
            out.append(f"| `{name}` | `{_type_name(info.annotation)}` | {'yes' if info.is_required() else 'no'} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
