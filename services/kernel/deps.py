"""FastAPI dependencies shared by every service: the request's session (which owns the transaction) and the caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from services.kernel.auth import Principal, Role, authenticate
from services.kernel.runtime import Runtime

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_runtime(request: Request) -> Runtime:
    """The process runtime."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_session(request: Request) -> Iterator[Session]:
    """One session per request: committed if the endpoint succeeds, rolled back if it raises."""
    runtime = get_runtime(request)
    read_only = request.method in READ_METHODS
    session = (runtime.read_sessions if read_only else runtime.sessions)()
    try:
        yield session
        if read_only:
            session.rollback()
        else:
            session.commit()
            runtime.relay.notify()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": commit before the response is sent, so a failed commit is an error response, not a lie.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_principal(request: Request, session: SessionDep) -> Principal:
    """The authenticated caller (401 if the key is missing, unknown or revoked)."""
    runtime = get_runtime(request)
    return authenticate(
        session, secret_key=runtime.settings.secret_key, authorization=request.headers.get("authorization")
    )


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role):  # type: ignore[no-untyped-def]
    """A dependency that lets only `roles` through (403 otherwise)."""

    def dependency(principal: CurrentPrincipal) -> Principal:
        return principal.require(*roles)

    return Depends(dependency)


CurrentTrader = Annotated[Principal, require_roles(Role.trader)]
CurrentOfficer = Annotated[Principal, require_roles(Role.officer, Role.admin)]
CurrentAdmin = Annotated[Principal, require_roles(Role.admin)]
