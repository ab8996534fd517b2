"""Plug the provenance service into a process: its router, one consumer of every event, the checkpointer thread."""

from __future__ import annotations

from fastapi import FastAPI

from ledger.anchor import load_chain_libraries
from services.kernel.bus import idempotent
from services.kernel.database import durable, make_sessionmaker
from services.kernel.runtime import Runtime
from services.provenance.checkpointer import Checkpointer
from services.provenance.consumer import CONSUMER, make_batch_handler, make_handler
from services.provenance.endpoints import router
from services.provenance.service import Provenance
from services.provenance.settings import provenance_settings


def install(app: FastAPI, runtime: Runtime) -> None:
    """Include the ledger routes, append every event to the ledger, and checkpoint in the background."""
    settings = provenance_settings(runtime.settings)
    # Now, in the thread building the app, rather than in the checkpointer's thread at its first anchor.
    load_chain_libraries()
    prov = Provenance(settings, engine=runtime.engine, sessions=runtime.sessions)
    # Tests start many apps: they connect the chain only when a test anchors.
    checkpointer = Checkpointer(prov, connect_at_start=runtime.settings.environment != "test")
    runtime.extras["provenance"] = prov
    runtime.extras["provenance.checkpointer"] = checkpointer
    app.include_router(router)
    # Appends commit durably (on SQLite, synchronous=FULL) before a checkpoint can sign and anchor them: a power
    # cut must not undo entries that an anchored checkpoint already covers.
    append_sessions = make_sessionmaker(durable(runtime.engine))
    runtime.bus.subscribe(
        "*",
        idempotent(
            append_sessions,
            CONSUMER,
            make_handler(prov, checkpointer.note_appended),
            handle_many=make_batch_handler(prov, checkpointer.note_appended),
        ),
        name="provenance.append",
    )
    # One checkpointer per deployment: with several server processes, the elected one runs it.
    runtime.singletons.append((checkpointer.start, checkpointer.stop))
