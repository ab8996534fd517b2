"""The declaration lifecycle: create, submit, amend, cancel, and the system transitions other services drive."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session, make_transient_to_detached

from services.declarations import assessment, crossborder, repository, routing
from services.declarations.events import ASSESSED, TRACE_REQUESTED, VERBS
from services.declarations.exceptions import CustomsValueTooLarge, DeclarationNotFound, IllegalTransition
from services.declarations.models import Declaration, DeclarationTransition, DeclarationVersion
from services.declarations.schemas import DeclarationIn, Status
from services.declarations.selectivity import public_actor
from services.kernel.auth import Principal, Role
from services.kernel.database import new_id, table_of, utcnow
from services.kernel.errors import Forbidden, PreconditionFailed, PreconditionRequired
from services.kernel.outbox import canonical_sha256, event_row, record_events

logger = logging.getLogger("smartgate.declarations.service")

# (state, action) -> next state. Actions a trader may take, and those the platform takes.
TRANSITIONS: dict[tuple[str, str], str] = {
    (Status.draft, "submit"): Status.submitted,
    (Status.draft, "amend"): Status.draft,
    (Status.draft, "cancel"): Status.cancelled,
    (Status.submitted, "amend"): Status.submitted,
    (Status.submitted, "cancel"): Status.cancelled,
    (Status.submitted, "clear"): Status.cleared,
    (Status.submitted, "expire"): Status.expired,
    (Status.cleared, "cancel"): Status.cancelled,
    # Amended after clearance, before release (VNACCS AMA): back to customs and assessed again.
    (Status.cleared, "amend"): Status.submitted,
    (Status.cleared, "release"): Status.released,
    (Status.cleared, "expire"): Status.expired,
    (Status.released, "exit"): Status.exited,
    # Officer review (yellow and red channels).
    (Status.submitted, "request_documents"): Status.awaiting_documents,
    (Status.submitted, "inspect"): Status.inspection,
    (Status.submitted, "reject"): Status.rejected,
    (Status.awaiting_documents, "provide_documents"): Status.submitted,
    # An amendment answers a documents request as an upload does: back to review, assessed again.
    (Status.awaiting_documents, "amend"): Status.submitted,
    (Status.awaiting_documents, "cancel"): Status.cancelled,
    (Status.awaiting_documents, "clear"): Status.cleared,
    (Status.awaiting_documents, "reject"): Status.rejected,
    (Status.awaiting_documents, "expire"): Status.expired,
    (Status.inspection, "clear"): Status.cleared,
    (Status.inspection, "reject"): Status.rejected,
    # An officer escalated a gate hold (services/inspection): the goods go to physical inspection, from any state
    # in which they are still under customs control and not yet inspected, released goods included (the truck is
    # stopped at the exit; after the inspection an officer clears them again, and paid duties release them).
    (Status.submitted, "gate_escalate"): Status.inspection,
    (Status.awaiting_documents, "gate_escalate"): Status.inspection,
    (Status.cleared, "gate_escalate"): Status.inspection,
    (Status.released, "gate_escalate"): Status.inspection,
}
TRADER_ACTIONS = ("submit", "amend", "cancel", "provide_documents")
OFFICER_DECISIONS = ("clear", "request_documents", "inspect", "reject")
EXPIRABLE = (Status.submitted.value, Status.awaiting_documents.value, Status.cleared.value)

# Registration-number prefixes by border gate (VNACCS numbers are per customs branch).
GATE_PREFIXES = {"KIMTHANH": "KT", "HEKOU": "HK"}


def allowed_actions(status: str, *, trader_only: bool = True) -> list[str]:
    """The actions possible from `status` (by default only those a trader may take)."""
    actions = [a for (s, a) in TRANSITIONS if s == status]
    return [a for a in actions if a in TRADER_ACTIONS] if trader_only else actions


def officer_actions(status: str) -> list[str]:
    """The decisions an officer may take from `status`."""
    return [a for (s, a) in TRANSITIONS if s == status and a in OFFICER_DECISIONS]


def etag(decl: Declaration) -> str:
    """Strong ETag of the declaration's current state."""
    return f'"{decl.row_version}-{decl.body_sha256[:12]}"'


def _body_document(body: DeclarationIn) -> dict[str, Any]:
    document = body.model_dump(mode="json")
    for item in document["items"]:
        if item.get("trace") is None:
            # Lines without trace references keep the document (and its hash) as it was before the field existed.
            item.pop("trace", None)
    return document


def _record(
    session: Session, decl: Declaration, *, action: str, from_status: str | None, actor: str, reason: str | None
) -> None:
    _record_many(session, decl, [(action, from_status, decl.status)], actor=actor, reason=reason)


def _record_many(
    session: Session,
    decl: Declaration,
    steps: list[tuple[str, str | None, str]],
    *,
    actor: str,
    reason: str | None,
) -> None:
    """Write transitions (action, from, to) and their `declaration.<verb>` events, one statement per table."""
    now = utcnow()
    rows = [_step_rows(decl, action, from_status, to_status, actor=actor, reason=reason, now=now)
            for action, from_status, to_status in steps]  # fmt: skip
    extra = [e for action, _, to_status in steps for e in crossborder.step_events(decl, action, to_status, now=now)]
    _write(session, [t for t, _ in rows], [e for _, e in rows] + extra)


_INSERT_TRANSITIONS = insert(table_of(DeclarationTransition))


def _write(session: Session, transitions: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
    if transitions:
        session.connection().execute(_INSERT_TRANSITIONS, transitions)
    record_events(session, events)


def _step_rows(
    decl: Declaration,
    action: str,
    from_status: str | None,
    to_status: str,
    *,
    actor: str,
    reason: str | None,
    now: dt.datetime,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The transition row and the `declaration.<verb>` event of one state change."""
    transition_row = {
        "declaration_id": decl.id,
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "actor": actor,
        "reason": reason,
        "version": decl.version,
        "at": now,
    }
    event = event_row(
        type=VERBS[action],
        subject=decl.id,
        payload={
            "declaration_id": decl.id,
            "number": decl.number,
            "organisation_id": decl.organisation_id,
            "status": to_status,
            "version": decl.version,
            "body_sha256": decl.body_sha256,
            # Customs staff are named by role: officers' key ids never reach traders, webhooks or the ledger.
            "actor": public_actor(actor),
            "reason": reason,
            "at": now.isoformat(),
            # What the gate needs to recognise the truck (inspection keeps a read model of it).
            "containers": [
                {"number": c["number"], "seals": c.get("seals", [])} for c in decl.body.get("containers", [])
            ],
            "truck_plate": decl.body.get("transport", {}).get("truck_plate"),
        },
    )
    return transition_row, event


def _assessed_event(decl: Declaration, done: assessment.Assessment) -> dict[str, Any]:
    """The channel and the duties, which the trader is told; the score, rule hits and draw stay in the
    declarations database, and the event carries only their salted commitment (see selectivity.commitment_of)."""
    return event_row(
        type=ASSESSED,
        subject=decl.id,
        payload={
            "declaration_id": decl.id,
            "number": decl.number,
            "organisation_id": decl.organisation_id,
            "version": decl.version,
            "body_sha256": decl.body_sha256,
            "channel": decl.channel,
            "assessment_sha256": done.commitment,
            "duties_total_vnd": done.bill.total_vnd,
            "duties_assessed": done.bill.assessed,
        },
    )


def _require_trader_of(principal: Principal) -> str:
    principal.require(Role.trader)
    if principal.organisation_id is None:
        raise Forbidden("this trader key is not bound to an organisation")
    return principal.organisation_id


def document_of(body: DeclarationIn) -> tuple[dict[str, Any], str]:
    """The stored JSON form of a body and the SHA-256 of its canonical JSON."""
    document = _body_document(body)
    # The schema has no float fields and no free-form keys (a test checks it): the fast canonical form applies.
    return document, canonical_sha256(document, plain=True)


@dataclass(slots=True)
class Filing:
    """A declaration being filed, worked out before anything is written (see `prepare` and `store`)."""

    decl: Declaration
    submit: bool
    containers: list[str]
    hs_codes: list[str]
    assessment: assessment.Assessment | None = None


def prepare(
    session: Session,
    *,
    principal: Principal,
    body: DeclarationIn,
    submit: bool = False,
    document: tuple[dict[str, Any], str] | None = None,
) -> Filing:
    """Everything a filing decides before it writes: the row, and when submitted, its duties and channel.

    Reads only; on SQLite the caller runs it outside the write transaction, so the one writer lock is held
    for the inserts of `store` alone.
    """
    organisation_id = _require_trader_of(principal)
    doc, sha = document or document_of(body)
    now = utcnow()
    decl = Declaration(
        id=new_id(),
        organisation_id=organisation_id,
        status=Status.draft.value,
        kind=body.kind.value,
        border_gate=body.border_gate,
        version=1,
        row_version=1,
        body=doc,
        body_sha256=sha,
        created_by=principal.actor,
        created_at=now,
        updated_at=now,
        duties_due_vnd=0,
        paid_vnd=0,
    )
    crossborder.copy_references(decl)
    filing = Filing(decl, submit, [c.number for c in body.containers], [i.hs_code for i in body.items])
    if submit:
        decl.status = _check(decl, "submit")
        decl.submitted_at = now
        filing.assessment = assessment.evaluate(session, decl)
        filing.assessment.apply(decl)
    return filing


_INSERT_DECLARATION = insert(table_of(Declaration))
_INSERT_VERSION = insert(table_of(DeclarationVersion))
_DECLARATION_COLUMNS = tuple(c.key for c in Declaration.__table__.columns)


def store(session: Session, filing: Filing) -> Declaration:
    """Write a prepared filing: registration number, officer in rotation, and every row, one statement per
    table. Returns the declaration, persistent in `session`."""
    decl = filing.decl
    actor = decl.created_by
    now = decl.created_at
    rows = [_step_rows(decl, "create", None, Status.draft.value, actor=actor, reason=None, now=now)]
    if filing.submit:
        assert filing.assessment is not None
        prefix = GATE_PREFIXES.get(decl.border_gate, decl.border_gate[:2])
        decl.number = f"{prefix}-{now.year}-{repository.next_number(session, prefix=prefix, year=now.year):06d}"
        rows.append(_step_rows(decl, "submit", Status.draft.value, decl.status, actor=actor, reason=None, now=now))
        result = filing.assessment.result
        rows.append(({}, _assessed_event(decl, filing.assessment)))
        if result.channel == "green" and assessment.trace_pending(decl):
            pass  # not cleared before `trace.checked` (consumers.on_trace_checked) re-assesses it
        elif result.channel == "green":
            decl.status = _check(decl, "clear", trader_only=False)
            rows.append(_step_rows(decl, "clear", Status.submitted.value, decl.status, actor="system:risk",
                                   reason=GREEN_REASON, now=now))  # fmt: skip
            if paid_in_full(decl):
                decl.status = _check(decl, "release", trader_only=False)
                rows.append(_step_rows(decl, "release", Status.cleared.value, decl.status, actor="system:payments",
                                       reason=_paid_reason(decl), now=now))  # fmt: skip
        else:
            routing.enqueue(session, decl)
    conn = session.connection()
    conn.execute(_INSERT_DECLARATION, [{c: getattr(decl, c) for c in _DECLARATION_COLUMNS}])
    conn.execute(
        _INSERT_VERSION,
        [{"declaration_id": decl.id, "version": 1, "body": decl.body, "body_sha256": decl.body_sha256,
          "actor": actor, "created_at": now}],
    )  # fmt: skip
    if filing.assessment is not None:
        assessment.record(session, decl, filing.assessment)
    repository.add_lookups(session, decl, containers=filing.containers, hs_codes=filing.hs_codes)
    extra = crossborder.step_events(decl, "submit", decl.status, now=now) if filing.submit else []
    _write(session, [t for t, _ in rows if t], [e for _, e in rows] + extra)
    if filing.submit:
        _request_trace_check(session, decl)
    # Inserted above: attach the object without another INSERT.
    make_transient_to_detached(decl)
    session.add(decl)
    if filing.submit:
        crossborder.share_findings(session, decl)
    return decl


def create(
    session: Session,
    *,
    principal: Principal,
    body: DeclarationIn,
    submit: bool = False,
    document: tuple[dict[str, Any], str] | None = None,
) -> Declaration:
    """File a new declaration as a draft (and submit it at once if asked), in the caller's transaction."""
    return store(session, prepare(session, principal=principal, body=body, submit=submit, document=document))


ID_SHAPE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def get_visible(session: Session, *, principal: Principal, declaration_id: str) -> Declaration:
    """A declaration the caller may see: traders only their organisation's; officers and admins all."""
    if not ID_SHAPE.match(declaration_id):
        raise DeclarationNotFound(declaration_id[:64])
    if principal.role is Role.trader:
        decl = repository.get(session, declaration_id, organisation_id=principal.organisation_id or "")
    else:
        principal.require(Role.officer, Role.supervisor, Role.admin)
        decl = repository.get(session, declaration_id)
    if decl is None:
        raise DeclarationNotFound(declaration_id)
    return decl


def _owned(session: Session, *, principal: Principal, declaration_id: str) -> Declaration:
    organisation_id = _require_trader_of(principal)
    if not ID_SHAPE.match(declaration_id):
        raise DeclarationNotFound(declaration_id[:64])
    decl = repository.get(session, declaration_id, organisation_id=organisation_id)
    if decl is None:
        raise DeclarationNotFound(declaration_id)
    return decl


def _check(decl: Declaration, action: str, *, trader_only: bool = True) -> str:
    target = TRANSITIONS.get((decl.status, action))
    if target is None:
        raise IllegalTransition(
            action=action, status=decl.status, allowed=allowed_actions(decl.status, trader_only=trader_only)
        )
    return target


def _register(session: Session, decl: Declaration, *, now: dt.datetime) -> None:
    """Move to submitted, with a registration number (kept if it already has one) and time."""
    decl.status = _check(decl, "submit")
    if decl.number is None:
        prefix = GATE_PREFIXES.get(decl.border_gate, decl.border_gate[:2])
        seq = repository.next_number(session, prefix=prefix, year=now.year)
        decl.number = f"{prefix}-{now.year}-{seq:06d}"
    decl.submitted_at = now
    decl.updated_at = now


def _submit(session: Session, decl: Declaration, *, actor: str) -> None:
    from_status = decl.status
    _register(session, decl, now=utcnow())
    session.flush()
    _record(session, decl, action="submit", from_status=from_status, actor=actor, reason=None)
    _request_trace_check(session, decl)


def _request_trace_check(session: Session, decl: Declaration) -> None:
    """Ask the traceability service to check the pallets and lots the goods lines name (`trace.checked` answers,
    consumers.on_trace_checked); nothing when no line names any."""
    lines = [
        {"line": n, "hs_code": item["hs_code"], "net_mass_kg": str(item["net_mass_kg"]), **item["trace"]}
        for n, item in enumerate(decl.body.get("items", []), start=1)
        if item.get("trace")
    ]
    if not lines:
        return
    consignee = decl.body.get("consignee") or {}
    record_events(session, [event_row(type=TRACE_REQUESTED, subject=decl.id, payload={
        "declaration_id": decl.id, "number": decl.number, "version": decl.version, "kind": decl.kind,
        "destination": consignee.get("country") if decl.kind == "export" else None, "lines": lines,
    })])  # fmt: skip


def submit(session: Session, *, principal: Principal, declaration_id: str) -> Declaration:
    """Register a draft: it gets its number and goes to customs."""
    decl = _owned(session, principal=principal, declaration_id=declaration_id)
    _submit(session, decl, actor=principal.actor)
    assess_and_route(session, decl)
    return decl


def amend(
    session: Session, *, principal: Principal, declaration_id: str, body: DeclarationIn, if_match: str | None
) -> Declaration:
    """Replace the body with a new version; the caller must prove it saw the current one (If-Match).

    A registered declaration is assessed again: new goods may raise its channel, never lower it, and the random
    draw is the declaration's own (not the body's), so an amendment cannot re-draw a selection; a declaration
    selected for review stays in review until an officer decides."""
    decl = _owned(session, principal=principal, declaration_id=declaration_id)
    if not if_match:
        raise PreconditionRequired("amend requires If-Match with the ETag of the version you are replacing")
    if if_match.strip() != etag(decl):
        raise PreconditionFailed(
            "the declaration changed since you read it; fetch it again and re-apply your amendment",
            current_etag=etag(decl),
        )
    from_status = decl.status
    decl.status = _check(decl, "amend")
    document = _body_document(body)
    decl.version += 1
    decl.body = document
    decl.body_sha256 = canonical_sha256(document)
    decl.kind = body.kind.value
    decl.border_gate = body.border_gate
    crossborder.copy_references(decl)
    decl.updated_at = utcnow()
    session.add(
        DeclarationVersion(
            declaration_id=decl.id,
            version=decl.version,
            body=document,
            body_sha256=decl.body_sha256,
            actor=principal.actor,
        )
    )
    repository.replace_lookups(
        session,
        decl,
        containers=[c.number for c in body.containers],
        hs_codes=[i.hs_code for i in body.items],
    )
    # The UPDATE carries "WHERE row_version = <read value>": of two racing amends, one finds no row.
    session.flush()
    _record(session, decl, action="amend", from_status=from_status, actor=principal.actor, reason=None)
    if decl.number is not None:
        _request_trace_check(session, decl)
    if decl.status == Status.submitted:
        # Registered: assessed again (VNACCS IDA01 before clearance, AMA after it).
        assess_and_route(session, decl)
    return decl


def cancel(session: Session, *, principal: Principal, declaration_id: str, reason: str) -> Declaration:
    """Cancel (invalidate) a declaration on the trader's request; never after release (UCC Art. 174)."""
    decl = _owned(session, principal=principal, declaration_id=declaration_id)
    return transition(session, decl=decl, action="cancel", actor=principal.actor, reason=reason, trader_only=True)


def transition(
    session: Session,
    *,
    decl: Declaration,
    action: str,
    actor: str,
    reason: str | None = None,
    trader_only: bool = False,
) -> Declaration:
    """Apply a state change and record it with its event (used by other workflows: clear, release, exit...)."""
    from_status = decl.status
    decl.status = _check(decl, action, trader_only=trader_only)
    decl.updated_at = utcnow()
    session.flush()
    _record(session, decl, action=action, from_status=from_status, actor=actor, reason=reason)
    return decl


def note(session: Session, decl: Declaration, *, action: str, actor: str, reason: str | None) -> None:
    """A history entry without a change of state (no `declaration.<verb>` event: the event that caused it is the
    record); touching the row changes its ETag, so a decision taken on the page seen before is 412."""
    decl.updated_at = utcnow()
    session.add(
        DeclarationTransition(
            declaration_id=decl.id,
            action=action,
            from_status=decl.status,
            to_status=decl.status,
            actor=actor,
            reason=reason,
            version=decl.version,
            at=decl.updated_at,
        )
    )
    session.flush()


GREEN_REASON = "green channel: automatic clearance"


def assess_and_route(session: Session, decl: Declaration) -> None:
    """Assess a registered declaration; green clears automatically, yellow and red join the review queue."""
    done = assessment.assess(session, decl)
    record_events(session, [_assessed_event(decl, done)])
    crossborder.share_findings(session, decl)
    if done.result.channel == "green" and assessment.trace_pending(decl):
        # Named pallets or lots: green is not cleared before `trace.checked` (consumers) re-assesses it.
        session.flush()
    elif done.result.channel == "green":
        transition(session, decl=decl, action="clear", actor="system:risk", reason=GREEN_REASON)
        settle(session, decl)
    else:
        routing.enqueue(session, decl)
        # The caller's response (and its ETag) must show the row as written.
        session.flush()


def settle(session: Session, decl: Declaration) -> None:
    """Release a cleared declaration once its duties are paid in full."""
    if decl.status == Status.cleared and paid_in_full(decl):
        transition(session, decl=decl, action="release", actor="system:payments", reason=_paid_reason(decl))


def duties_assessed(decl: Declaration) -> bool:
    """Whether the duty bill is complete (every line had its tariff line and exchange rate)."""
    return bool((decl.duties or {}).get("assessed"))


def paid_in_full(decl: Declaration) -> bool:
    """Duties assessed and paid: a bill that could not be computed is never "paid" by paying its partial total."""
    return duties_assessed(decl) and decl.paid_vnd >= decl.duties_due_vnd


def _paid_reason(decl: Declaration) -> str:
    return f"cleared and paid in full ({decl.paid_vnd} of {decl.duties_due_vnd} VND)"


def expire_stale(session: Session, *, now: dt.datetime, days: int) -> list[str]:
    """Expire declarations registered more than `days` ago whose goods never reached the gate."""
    cut_off = now - dt.timedelta(days=days)
    expired = []
    for decl in repository.stale(session, statuses=EXPIRABLE, submitted_before=cut_off):
        transition(
            session,
            decl=decl,
            action="expire",
            actor="system:expiry",
            reason=f"goods not presented at the gate within {days} days of registration",
        )
        expired.append(decl.id)
    return expired


def reassess(session: Session, decl: Declaration, *, route: bool = True, share: bool = True) -> None:
    """Assess a declaration again because another service's data changed what its rules see (a gate mismatch, the
    partner administration's data): a submitted one is routed again; one already in review keeps its place and
    its channel can only rise. A customs value that became too large (a re-posted rate) sends it to review."""
    try:
        if route:
            assess_and_route(session, decl)
            return
        done = assessment.assess(session, decl)
        record_events(session, [_assessed_event(decl, done)])
        if share:
            crossborder.share_findings(session, decl)
    except CustomsValueTooLarge:
        logger.warning("reassessment refused: customs value too large", extra={"declaration_id": decl.id})
        decl.channel = "red"
