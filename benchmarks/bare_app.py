"""The baseline of benchmarks/api_filing.py: a bare FastAPI endpoint that inserts one row into the same database."""

from __future__ import annotations

import os
import uuid

from fastapi import FastAPI, Request
from sqlalchemy import Column, MetaData, String, Table, Text

from services.kernel.database import make_engine

engine = make_engine(os.environ["SMARTGATE_DATABASE_URL"])
metadata = MetaData()
rows = Table("bench_bare_rows", metadata, Column("id", String(36), primary_key=True), Column("body", Text))
# The baseline is a benchmark fixture, not application code: a plain CREATE keeps it self-contained.
metadata.create_all(engine)

app = FastAPI()


@app.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}


@app.post("/rows", status_code=201)
async def insert_row(request: Request) -> dict[str, str]:
    """Insert the raw body as one row."""
    body = (await request.body()).decode()
    row_id = str(uuid.uuid4())

    def write() -> None:
        with engine.begin() as conn:
            conn.execute(rows.insert().values(id=row_id, body=body))

    from starlette.concurrency import run_in_threadpool

    await run_in_threadpool(write)
    return {"id": row_id}
