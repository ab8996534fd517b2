"""The declaration lifecycle in the service layer: every transition, every refusal, history, events, expiry."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from services.declarations import repository, service
from services.declarations.events import VERBS
from services.declarations.exceptions import DeclarationNotFound, IllegalTransition
from services.declarations.models import Declaration, DeclarationTransition, DeclarationVersion
from services.declarations.schemas import DeclarationIn, Status
from services.kernel.auth import Principal
from services.kernel.database import utcnow
from services.kernel.errors import Forbidden, PreconditionFailed, PreconditionRequired
from services.kernel.outbox import OutboxEvent, canonical_sha256

ALL_ACTIONS = sorted({action for _, action in service.TRANSITIONS})
SYSTEM = "officer:test"

# How to reach each state from nothing: (action, by trader?) steps after create.
PATHS: dict[str, list[str]] = {
    "draft": [],
    "submitted": ["submit"],
    "cleared": ["submit", "clear"],
    "released": ["submit", "clear", "release"],
    "exited": ["submit", "clear", "release", "exit"],
    "cancelled": ["cancel"],
    "expired": ["submit", "expire"],
    "awaiting_documents": ["submit", "request_documents"],
    "inspection": ["submit", "inspect"],
    "rejected": ["submit", "reject"],
}


def current(session: Session, decl_id: str) -> Declaration:
    """The stored declaration (which must exist)."""
    decl = repository.get(session, decl_id)
    assert decl is not None
    return decl


def amended(body: dict[str, Any], **changes: Any) -> DeclarationIn:
    """A copy of `body` with some top-level changes, validated."""
    return DeclarationIn.model_validate({**body, **changes})


def apply(session: Session, decl_id: str, action: str, principal: Principal, body: dict[str, Any]) -> Declaration:
    """Take `action` the way its actor would (trader actions through their service functions)."""
    if action == "submit":
        return service.submit(session, principal=principal, declaration_id=decl_id)
    if action == "amend":
        shown = service.get_visible(session, principal=principal, declaration_id=decl_id)
        new_body = amended(body, border_gate="KIMTHANH", procedure_code="A12")
        return service.amend(
            session, principal=principal, declaration_id=decl_id, body=new_body, if_match=service.etag(shown)
        )
    if action == "cancel":
        return service.cancel(session, principal=principal, declaration_id=decl_id, reason="order cancelled")
    decl = repository.get(session, decl_id)
    assert decl is not None
    actor = principal.actor if action in service.TRADER_ACTIONS else SYSTEM
    return service.transition(session, decl=decl, action=action, actor=actor)


@pytest.fixture
def file(uow, trader_a: Principal, declaration_body: dict[str, Any]) -> Callable[..., str]:
    """File a declaration as trader A and drive it to `state`; returns its id."""

    def make(state: str = "draft", body: dict[str, Any] | None = None) -> str:
        with uow() as session:
            decl = service.create(
                session, principal=trader_a, body=DeclarationIn.model_validate(body or declaration_body)
            )
            decl_id = decl.id
        for action in PATHS[state]:
            with uow() as session:
                apply(session, decl_id, action, trader_a, declaration_body)
        return decl_id

    return make


def test_create_stores_a_draft_with_version_one(file, session: Session, trader_a: Principal) -> None:
    decl_id = file()
    decl = session.get(Declaration, decl_id)
    assert decl is not None
    assert (decl.status, decl.version, decl.number, decl.organisation_id) == (
        "draft",
        1,
        None,
        trader_a.organisation_id,
    )
    assert decl.body_sha256 == canonical_sha256(decl.body)
    assert decl.created_by == trader_a.actor
    assert decl.created_at.tzinfo is not None


def test_create_and_submit_at_once_assigns_consecutive_numbers(uow, trader_a, declaration_body) -> None:
    numbers = []
    for _ in range(3):
        with uow() as session:
            decl = service.create(
                session, principal=trader_a, body=DeclarationIn.model_validate(declaration_body), submit=True
            )
            assert decl.status == "submitted"
            assert decl.submitted_at is not None
            assert decl.number is not None
            numbers.append(decl.number)
    year = utcnow().year
    assert numbers == [f"KT-{year}-{n:06d}" for n in (1, 2, 3)]


def test_numbers_are_per_gate_prefix(uow, trader_a, declaration_body) -> None:
    with uow() as session:
        kt = service.create(
            session, principal=trader_a, body=DeclarationIn.model_validate(declaration_body), submit=True
        )
        other = service.create(
            session, principal=trader_a, body=amended(declaration_body, border_gate="LAOCAI"), submit=True
        )
    year = utcnow().year
    assert kt.number == f"KT-{year}-000001"
    assert other.number == f"LA-{year}-000001"


LEGAL = sorted(service.TRANSITIONS.items())
# `declaration.<verb>` names that are not simply action + "ed".
EVENT_VERBS = {
    "submit": "submitted",
    "amend": "amended",
    "cancel": "cancelled",
    "release": "released",
    "expire": "expired",
    "exit": "exited",
    "request_documents": "documents_requested",
    "provide_documents": "documents_provided",
    "inspect": "inspection_ordered",
    "gate_escalate": "inspection_ordered",
    "reject": "rejected",
}


@pytest.mark.parametrize(("start_action", "target"), LEGAL, ids=[f"{s}-{a}" for (s, a), _ in LEGAL])
def test_every_legal_transition(file, uow, session, trader_a, declaration_body, start_action, target) -> None:
    start, action = start_action
    decl_id = file(start)
    with uow() as s:
        before = repository.get(s, decl_id)
        assert before is not None
        assert before.status == start
        version_before = before.version
        decl = apply(s, decl_id, action, trader_a, declaration_body)
        assert decl.status == target
    transitions = repository.transitions(session, decl_id)
    last = transitions[-1]
    assert (last.action, last.from_status, last.to_status) == (action, start, target)
    assert last.actor == (trader_a.actor if action in service.TRADER_ACTIONS else SYSTEM)
    assert last.at.tzinfo is not None
    assert last.version == version_before + (1 if action == "amend" else 0)
    event = session.scalars(
        select(OutboxEvent)
        .where(OutboxEvent.subject == decl_id, OutboxEvent.type == VERBS[action])
        .order_by(OutboxEvent.seq.desc())
        .limit(1)
    ).one()
    assert event.type == f"declaration.{EVENT_VERBS.get(action, action + 'ed')}"
    stored = session.get(Declaration, decl_id)
    assert stored is not None
    assert event.subject == decl_id
    assert event.payload["declaration_id"] == decl_id
    assert event.payload["version"] == stored.version
    assert event.payload["status"] == target
    assert event.payload["body_sha256"] == canonical_sha256(stored.body) == stored.body_sha256


STATES = [s.value for s in Status]


@pytest.mark.parametrize("start", STATES)
def test_every_illegal_transition_is_refused(file, uow, trader_a, declaration_body, start) -> None:
    """From each state, every action the table does not allow is a 409 naming the state and what is allowed."""
    decl_id = file(start)
    illegal = [a for a in ALL_ACTIONS if (start, a) not in service.TRANSITIONS]
    assert illegal
    for action in illegal:
        with pytest.raises(IllegalTransition) as info, uow() as s:
            apply(s, decl_id, action, trader_a, declaration_body)
        err = info.value
        assert err.status == 409
        assert err.extra["current_status"] == start
        # submit, amend and cancel answer a trader with the trader's options; other workflows list every option.
        trader_only = action in ("submit", "amend", "cancel")
        assert err.extra["allowed_actions"] == service.allowed_actions(start, trader_only=trader_only)
        assert start in err.detail
        assert action in err.detail


def test_a_refused_transition_changes_nothing(file, uow, session, trader_a) -> None:
    decl_id = file("released")
    count = len(session.scalars(select(OutboxEvent)).all())
    with pytest.raises(IllegalTransition), uow() as s:
        service.cancel(s, principal=trader_a, declaration_id=decl_id, reason="too late")
    session.expire_all()
    assert session.get(Declaration, decl_id).status == "released"
    assert len(session.scalars(select(OutboxEvent)).all()) == count


def test_cancel_after_release_names_state_and_allowed_actions(file, uow, trader_a) -> None:
    decl_id = file("released")
    with pytest.raises(IllegalTransition) as info, uow() as s:
        service.cancel(s, principal=trader_a, declaration_id=decl_id, reason="too late")
    assert info.value.extra == {"current_status": "released", "allowed_actions": []}
    assert "released" in info.value.detail


def test_allowed_actions_of_each_state() -> None:
    assert service.allowed_actions("draft") == ["submit", "amend", "cancel"]
    assert set(service.allowed_actions("submitted")) == {"amend", "cancel"}
    assert service.allowed_actions("cleared") == ["cancel", "amend"]  # amended after clearance: assessed again
    for final in ("released", "exited", "cancelled", "expired", "rejected"):
        assert service.allowed_actions(final) == []
    assert {"clear", "expire"} <= set(service.allowed_actions("submitted", trader_only=False))
    for status in STATES:
        assert set(service.allowed_actions(status)) <= set(service.TRADER_ACTIONS)


def test_amend_keeps_every_version(file, uow, session, trader_a, declaration_body) -> None:
    decl_id = file("submitted")
    for code in ("A12", "A21"):
        with uow() as s:
            service.amend(
                s, principal=trader_a, declaration_id=decl_id, body=amended(declaration_body, procedure_code=code),
                if_match=service.etag(current(s, decl_id)),
            )  # fmt: skip
    versions = repository.versions(session, decl_id)
    assert [v.version for v in versions] == [1, 2, 3]
    assert [v.body["procedure_code"] for v in versions] == ["A11", "A12", "A21"]
    assert all(v.body_sha256 == canonical_sha256(v.body) for v in versions)
    assert all(v.actor == trader_a.actor for v in versions)
    decl = session.get(Declaration, decl_id)
    assert decl is not None
    assert (decl.version, decl.status) == (3, "submitted")
    assert decl.body == versions[-1].body


def test_amend_updates_lookups(file, uow, session, trader_a, declaration_body) -> None:
    decl_id = file()
    new_items = [dict(declaration_body["items"][0], hs_code="08041000")]
    new_containers = [{"number": "MSKU1234565"}]
    with uow() as s:
        service.amend(
            s, principal=trader_a, declaration_id=decl_id,
            body=amended(declaration_body, items=new_items, containers=new_containers),
            if_match=service.etag(current(s, decl_id)),
        )  # fmt: skip
    assert [
        d.id for d in repository.list_page(session, repository.ListFilter(hs_prefix="0804"), limit=5, cursor=None)
    ] == [decl_id]
    assert repository.list_page(session, repository.ListFilter(hs_prefix="0810"), limit=5, cursor=None) == []
    assert repository.list_page(session, repository.ListFilter(container="CSQU3054383"), limit=5, cursor=None) == []
    assert len(repository.list_page(session, repository.ListFilter(container="MSKU1234565"), limit=5, cursor=None)) == 1


def test_amend_requires_if_match(file, uow, trader_a, declaration_body) -> None:
    decl_id = file()
    with pytest.raises(PreconditionRequired), uow() as s:
        service.amend(s, principal=trader_a, declaration_id=decl_id, body=amended(declaration_body), if_match=None)


def test_amend_with_a_stale_etag_fails_and_says_the_current_one(file, uow, trader_a, declaration_body) -> None:
    decl_id = file()
    with uow() as s:
        first = service.etag(current(s, decl_id))
    with uow() as s:
        service.submit(s, principal=trader_a, declaration_id=decl_id)
    with pytest.raises(PreconditionFailed) as info, uow() as s:
        service.amend(s, principal=trader_a, declaration_id=decl_id, body=amended(declaration_body), if_match=first)
    with uow() as s:
        assert info.value.extra["current_etag"] == service.etag(current(s, decl_id))


def test_every_change_changes_the_etag(file, uow, trader_a) -> None:
    decl_id = file()
    seen = set()
    for action in ("submit", "clear", "release"):
        with uow() as s:
            seen.add(service.etag(current(s, decl_id)))
            apply(s, decl_id, action, trader_a, {})
    assert len(seen) == 3


def test_optimistic_lock_catches_a_change_made_after_the_read(file, uow, trader_a, declaration_body) -> None:
    """The amend's UPDATE is conditional on the row version it read: a concurrent change makes it fail."""
    decl_id = file()

    def amend_after_a_concurrent_change() -> None:
        with uow() as s:
            loaded = current(s, decl_id)  # held: the session's identity map keeps it only weakly
            tag = service.etag(loaded)
            # Another writer bumps the row behind this session's back (the loaded object keeps the old version).
            s.execute(
                update(Declaration)
                .where(Declaration.id == decl_id)
                .values(row_version=Declaration.row_version + 1)
                .execution_options(synchronize_session=False)
            )
            service.amend(s, principal=trader_a, declaration_id=decl_id, body=amended(declaration_body), if_match=tag)

    with pytest.raises(StaleDataError):
        amend_after_a_concurrent_change()


def test_two_amends_with_one_etag_in_separate_sessions(file, runtime, trader_a, declaration_body) -> None:
    """Both callers read the same version, then amend concurrently: exactly one wins, the other is refused."""
    decl_id = file()
    with runtime.read_sessions() as s:
        tag = service.etag(current(s, decl_id))
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def amend(code: str) -> None:
        from services.kernel.database import unit_of_work

        barrier.wait()
        try:
            with unit_of_work(runtime.sessions) as s:
                service.amend(
                    s, principal=trader_a, declaration_id=decl_id,
                    body=amended(declaration_body, procedure_code=code), if_match=tag,
                )  # fmt: skip
            outcomes.append("ok")
        except (PreconditionFailed, StaleDataError):
            outcomes.append("refused")

    threads = [threading.Thread(target=amend, args=(code,)) for code in ("A12", "A21")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "refused"]
    with runtime.read_sessions() as s:
        assert [v.version for v in repository.versions(s, decl_id)] == [1, 2]


def test_concurrent_submissions_get_distinct_numbers(runtime, trader_a, declaration_body) -> None:
    from services.kernel.database import unit_of_work

    barrier = threading.Barrier(4)
    numbers: list[str] = []
    errors: list[BaseException] = []

    def file_and_submit() -> None:
        barrier.wait()
        try:
            with unit_of_work(runtime.sessions) as s:
                decl = service.create(
                    s, principal=trader_a, body=DeclarationIn.model_validate(declaration_body), submit=True
                )
                assert decl.number is not None
                numbers.append(decl.number)
        except BaseException as exc:  # noqa: BLE001 - a thread's failure must fail the test, not vanish
            errors.append(exc)

    threads = [threading.Thread(target=file_and_submit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    year = utcnow().year
    assert sorted(numbers) == [f"KT-{year}-{n:06d}" for n in range(1, 5)]


# --- who may do what -----------------------------------------------------------------------------------------


def test_another_organisation_sees_nothing(file, uow, trader_b, declaration_body) -> None:
    decl_id = file("submitted")
    with uow() as s:
        with pytest.raises(DeclarationNotFound):
            service.get_visible(s, principal=trader_b, declaration_id=decl_id)
        with pytest.raises(DeclarationNotFound):
            service.submit(s, principal=trader_b, declaration_id=decl_id)
        with pytest.raises(DeclarationNotFound):
            service.cancel(s, principal=trader_b, declaration_id=decl_id, reason="not mine")
        with pytest.raises(DeclarationNotFound):
            service.amend(s, principal=trader_b, declaration_id=decl_id, body=amended(declaration_body), if_match='"x"')
        assert (
            repository.list_page(
                s, repository.ListFilter(organisation_id=trader_b.organisation_id), limit=10, cursor=None
            )
            == []
        )


def test_not_found_and_not_yours_look_the_same(file, uow, trader_b) -> None:
    decl_id = file()
    with uow() as s:
        with pytest.raises(DeclarationNotFound) as theirs:
            service.get_visible(s, principal=trader_b, declaration_id=decl_id)
        with pytest.raises(DeclarationNotFound) as missing:
            service.get_visible(s, principal=trader_b, declaration_id="00000000-0000-0000-0000-000000000000")
    assert theirs.value.status == missing.value.status == 404
    assert type(theirs.value) is type(missing.value)


def test_officers_see_every_declaration_but_cannot_file(file, uow, officer, declaration_body) -> None:
    decl_id = file()
    with uow() as s:
        assert service.get_visible(s, principal=officer, declaration_id=decl_id).id == decl_id
        with pytest.raises(Forbidden):
            service.create(s, principal=officer, body=DeclarationIn.model_validate(declaration_body))
        with pytest.raises(Forbidden):
            service.cancel(s, principal=officer, declaration_id=decl_id, reason="officer cancels")


@pytest.mark.parametrize("role", ["gate", "engineer"])
def test_other_roles_may_not_read_declarations(file, uow, make_principal, role) -> None:
    decl_id = file()
    with pytest.raises(Forbidden), uow() as s:
        service.get_visible(s, principal=make_principal(role), declaration_id=decl_id)


# --- history and events --------------------------------------------------------------------------------------


def test_history_records_every_state_change_with_actor_and_time(file, uow, session, trader_a, declaration_body) -> None:
    decl_id = file("released")
    rows = repository.transitions(session, decl_id)
    assert [(t.action, t.from_status, t.to_status) for t in rows] == [
        ("create", None, "draft"),
        ("submit", "draft", "submitted"),
        ("clear", "submitted", "cleared"),
        ("release", "cleared", "released"),
    ]
    assert [t.actor for t in rows] == [trader_a.actor, trader_a.actor, SYSTEM, SYSTEM]
    times = [t.at for t in rows]
    assert times == sorted(times)


def test_one_event_per_state_change_in_order(file, session) -> None:
    decl_id = file("exited")
    events = session.scalars(
        select(OutboxEvent)
        .where(OutboxEvent.subject == decl_id, OutboxEvent.type.in_(VERBS.values()))
        .order_by(OutboxEvent.seq)
    ).all()
    assert [e.type for e in events] == [
        "declaration.created",
        "declaration.submitted",
        "declaration.cleared",
        "declaration.released",
        "declaration.exited",
    ]
    assert all(e.published_at is None for e in events)
    assert len({e.id for e in events}) == 5
    numbers = {e.payload["number"] for e in events[1:]}
    assert len(numbers) == 1
    assert None not in numbers


def test_a_rolled_back_change_leaves_no_event(uow, session, trader_a, declaration_body) -> None:

    def file_then_fail() -> None:
        with uow() as s:
            service.create(s, principal=trader_a, body=DeclarationIn.model_validate(declaration_body))
            raise RuntimeError("the request failed after the service call")

    with pytest.raises(RuntimeError):
        file_then_fail()
    assert session.scalars(select(OutboxEvent)).all() == []
    assert session.scalars(select(Declaration)).all() == []
    assert session.scalars(select(DeclarationVersion)).all() == []
    assert session.scalars(select(DeclarationTransition)).all() == []


# --- expiry --------------------------------------------------------------------------------------------------


def test_expiry_takes_registered_declarations_older_than_the_limit(file, uow, session) -> None:
    ids = {
        state: file(state) for state in ("draft", "submitted", "awaiting_documents", "cleared", "released", "cancelled")
    }
    with uow() as s:
        assert service.expire_stale(s, now=utcnow() + dt.timedelta(days=14), days=15) == []
    with uow() as s:
        expired = service.expire_stale(s, now=utcnow() + dt.timedelta(days=16), days=15)
    assert sorted(expired) == sorted([ids["submitted"], ids["awaiting_documents"], ids["cleared"]])
    session.expire_all()
    assert {state: session.get(Declaration, i).status for state, i in ids.items()} == {
        "draft": "draft",
        "submitted": "expired",
        "awaiting_documents": "expired",
        "cleared": "expired",
        "released": "released",
        "cancelled": "cancelled",
    }
    last = repository.transitions(session, ids["submitted"])[-1]
    assert (last.action, last.actor) == ("expire", "system:expiry")
    assert "15 days" in (last.reason or "")
    kinds = session.scalars(select(OutboxEvent.type).where(OutboxEvent.type == "declaration.expired")).all()
    assert len(kinds) == 3
    with uow() as s:
        assert service.expire_stale(s, now=utcnow() + dt.timedelta(days=30), days=15) == []


def test_expiry_counts_from_registration(file, uow) -> None:
    decl_id = file("submitted")
    with uow() as s:
        s.execute(
            update(Declaration)
            .where(Declaration.id == decl_id)
            .values(submitted_at=utcnow() - dt.timedelta(days=15, minutes=1))
        )
    with uow() as s:
        assert service.expire_stale(s, now=utcnow(), days=15) == [decl_id]
