"""FastAPI dependencies shared by every service: the request's session (which owns the transaction) and the caller.

Every synchronous dependency costs a hop to the thread pool, and on SQLite a write transaction holds the one
writer lock across every hop it spans. So the dependencies here are asynchronous and touch the database only
when they must: the session is opened lazily (its transaction begins at the endpoint's first statement), the
caller comes from a short-lived cache or a read-only lookup, and the commit hop is skipped when the endpoint
already committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from services.kernel import sessions
from services.kernel.auth import Principal, Role, authenticate
from services.kernel.database import unit_of_work
from services.kernel.dbfaults import outage_code
from services.kernel.runtime import Runtime

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_runtime(request: Request) -> Runtime:
    """The process runtime."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def _has_work(session: Session) -> bool:
    """Whether ending this session needs the database (an open transaction or unflushed changes)."""
    return session.in_transaction() or bool(session.new) or bool(session.deleted) or bool(session.dirty)


def _end(session: Session, *, commit: bool) -> None:
    try:
        if commit:
            session.commit()
    finally:
        session.close()


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request: committed if the endpoint succeeds, rolled back if it raises."""
    runtime = get_runtime(request)
    read_only = request.method in READ_METHODS
    session = (runtime.read_sessions if read_only else runtime.sessions)()
    try:
        yield session
    except BaseException:
        if _has_work(session):
            await run_in_threadpool(_end, session, commit=False)
        else:
            session.close()
        raise
    if _has_work(session):
        await run_in_threadpool(_end, session, commit=not read_only)
    else:
        session.close()
    if not read_only:
        runtime.relay.notify()


# scope="function": commit before the response is sent, so a failed commit is an error response, not a lie.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_principal(request: Request) -> Principal:
    """The authenticated caller (401 if the key is missing, unknown or revoked; 429 over its rate limit)."""
    principal = await _authenticated(request)
    get_runtime(request).limiter.check(principal.key_id)
    return principal


async def _authenticated(request: Request) -> Principal:
    runtime = get_runtime(request)
    authorization = request.headers.get("authorization")
    # Console sessions are never cached: a sign-out or an expiry must take effect on the very next request.
    console = sessions.is_console(authorization)
    cached = None if console else runtime.principals.get(authorization)
    if cached is not None:
        return cached

    def lookup() -> Principal:
        # A read-only session: on SQLite it never waits for, or holds, the writer lock.
        with runtime.read_sessions() as session:
            if not console:
                return authenticate(session, secret_key=runtime.settings.secret_key, authorization=authorization)
            principal, stale = sessions.resolve(session, secret_key=runtime.settings.secret_key,
                                                header=authorization or "",
                                                idle_seconds=runtime.settings.console_session_idle_seconds)  # fmt: skip
        if stale and principal.session_id:  # at most once a minute per session: a short write of its own
            with unit_of_work(runtime.sessions) as session:
                sessions.touch(session, principal.session_id)
        return principal

    # One look-up per key at a time: when a cached caller expires under load, the requests that arrive meanwhile
    # wait for that look-up instead of each running their own (16 clients made 16 identical look-ups).
    loop = asyncio.get_running_loop()
    in_flight = runtime.principals.in_flight
    pending = in_flight.get(authorization) if authorization else None
    if pending is not None and pending.get_loop() is loop:
        found = await asyncio.shield(pending)
        if isinstance(found, Principal):
            return found
        if found is not None:
            # The database is down: this request's own look-up would only wait as long again (a 503 it is).
            raise found
        return await run_in_threadpool(lookup)  # that look-up failed: this request gets its own answer (401)
    future: asyncio.Future[Principal | Exception | None] = loop.create_future()
    if authorization:
        in_flight[authorization] = future
    outcome: Principal | Exception | None = None
    try:
        outcome = principal = await run_in_threadpool(lookup)
        if not console:
            runtime.principals.put(authorization, principal)
    except Exception as exc:
        outcome = exc if outage_code(exc) else None
        raise
    finally:
        if authorization and in_flight.get(authorization) is future:
            del in_flight[authorization]
        future.set_result(outcome)  # None (failed or cancelled): each waiter looks up for itself
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role):
    """A dependency that lets only `roles` through (403 otherwise)."""

    async def dependency(principal: CurrentPrincipal) -> Principal:
        return principal.require(*roles)

    return Depends(dependency)


CurrentTrader = Annotated[Principal, require_roles(Role.trader)]
# Who reads the review side (queue, declarations, gate events, ledger entries): customs officers, their
# supervisors, and admins. Deciding is narrower (officers and supervisors; see declarations/review.py).
CurrentOfficer = Annotated[Principal, require_roles(Role.officer, Role.supervisor, Role.admin)]
CurrentAdmin = Annotated[Principal, require_roles(Role.admin)]
