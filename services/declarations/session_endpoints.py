"""The console's sign-in and sign-out, as API calls (the console holds no database: in the distributed deployment
the gateway serves it). Internal: not in the OpenAPI document; see services/kernel/sessions.py."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.kernel import sessions
from services.kernel.deps import CurrentOfficer, RuntimeDep, SessionDep
from services.kernel.errors import NotFound, Unprocessable
from services.kernel.responses import JSONResponse

router = APIRouter(prefix="/api/v1/review/sessions", include_in_schema=False)


@router.post("", status_code=201)
def open_console_session(session: SessionDep, principal: CurrentOfficer, runtime: RuntimeDep) -> JSONResponse:
    """Sign an officer in with an API key: a new session id for the console's cookie (usable by the console only)."""
    if principal.session_id is not None:
        raise Unprocessable("sign in with an API key, not with a console session", code="session.nested")
    row, token = sessions.open_session(session, key_id=principal.key_id,
                                       max_seconds=runtime.settings.console_session_max_seconds)  # fmt: skip
    return JSONResponse({"token": token, "expires_at": row.expires_at.isoformat().replace("+00:00", "Z"),
                         "idle_seconds": runtime.settings.console_session_idle_seconds}, status_code=201)  # fmt: skip


@router.delete("/current", status_code=204)
def end_console_session(session: SessionDep, principal: CurrentOfficer) -> Response:
    """Sign out: the session that makes this call ends, for every holder of its id."""
    if principal.session_id is None:
        raise NotFound("this call is made with a console session, not with an API key")
    sessions.end(session, principal.session_id)
    return Response(status_code=204)
