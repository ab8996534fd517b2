"""Two administrations in one test: two apps, each with its own database (same backend) and key, served over real
HTTP on 127.0.0.1, registered as each other's partner. Their dispatchers are driven by the test (`push()`)."""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from services.exchange import service
from services.exchange.delivery import Dispatcher
from services.exchange.install import TYPES_KEY
from services.exchange.models import ExchangeMessage, ExchangeRejection
from services.exchange.registry import Inbound, MessageType, Outbound, Rejected
from services.exchange.service import Exchange
from services.exchange.settings import ExchangeSettings
from services.kernel.database import unit_of_work
from services.kernel.outbox import Event
from services.kernel.runtime import Runtime
from tests.conftest import _admin_engine, pg_server_url

# The test-only message type: a control result with a note; its inbound keeps what arrived (one effect each).
NOTE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["note"],
    "properties": {"note": {"type": "string", "maxLength": 200}, "n": {"type": "integer", "minimum": 0}},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Side:
    """One administration: its app, database, exchange and dispatcher, and what its inbound handler received."""

    def __init__(self, code: str, database_url: str, var_dir: Path, **overrides: Any) -> None:
        from api.app import create_app

        self.code = code
        self.effects: list[Inbound] = []
        values: dict[str, Any] = {
            "environment": "test", "database_url": database_url, "secret_key": secrets.token_urlsafe(40),
            "var_dir": var_dir, "log_json": False, "relay_interval_seconds": 0.05, "rate_limit_per_minute": 0,
            "expiry_check_seconds": 3600, "administration": code, "exchange_poll_seconds": 3600,
            "exchange_retry_base_seconds": 0.05, "exchange_retry_cap_seconds": 0.2, "exchange_timeout_seconds": 5,
            "exchange_rate_limit_per_minute": 0,
        }  # fmt: skip
        self.settings = ExchangeSettings(**(values | overrides))
        self.runtime = Runtime.build(self.settings)
        self.runtime.extras[TYPES_KEY] = {"controlResult": self._type()}
        self.app = create_app(self.settings, runtime=self.runtime)
        self.ex: Exchange = self.runtime.extras["exchange"]
        self.dispatcher: Dispatcher = self.runtime.extras["exchange.dispatcher"]
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def _type(self) -> MessageType:
        def outbound(event: Event) -> list[Outbound]:
            if event.type != "declaration.cleared":
                return []
            number = event.payload.get("number") or event.payload["declaration_id"]
            return [Outbound("controlResult", number, None, {"note": f"cleared {number}"})]

        def inbound(session: Any, message: Inbound) -> list[dict[str, str]]:
            if message.payload["note"] == "refuse me":
                raise Rejected("control.unknown_consignment", "no such consignment here", "/payload/note")
            self.effects.append(message)
            if message.payload["note"] == "odd":
                return [{"code": "control.odd", "detail": "an odd note"}]
            return []

        return MessageType("controlResult", 1, NOTE_SCHEMA, outbound, inbound)

    # ---- serving

    def start(self) -> None:
        """Serve the app on its port (uvicorn, with its lifespan) until stop()."""
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_config=None,
                                                    access_log=False))  # fmt: skip
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                pytest.fail(f"{self.code} did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop serving (its port is closed: the partner is down)."""
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=15)
            self.server = self.thread = None

    # ---- helpers

    def queue(self, correlation_id: str, note: str, *, recipient: str | None = None, n: int = 0) -> list[str]:
        """Queue a controlResult message (as the consumer does); its message ids."""
        with unit_of_work(self.runtime.sessions) as session:
            rows = service.queue(session, self.ex, Outbound("controlResult", correlation_id, recipient,
                                                            {"note": note, "n": n}))  # fmt: skip
            return [r.message_id for r in rows]

    def push(self, *, rounds: int = 50, until_done: bool = True) -> None:
        """Dispatcher passes (due-now each round) until nothing is pending, or `rounds` passes."""
        for _ in range(rounds):
            with unit_of_work(self.runtime.sessions) as session:
                service.retry_all(session)
            self.dispatcher.run_once()
            if not until_done or not self.pending():
                return

    def pending(self) -> int:
        """Sent messages not yet acknowledged."""
        with unit_of_work(self.runtime.read_sessions) as session:
            return int(session.scalar(select(func.count()).select_from(ExchangeMessage).where(
                ExchangeMessage.direction == "out", ExchangeMessage.state != "acknowledged")) or 0)  # fmt: skip

    def messages(self, direction: str) -> list[ExchangeMessage]:
        """Messages of one direction, in store order."""
        with unit_of_work(self.runtime.read_sessions) as session:
            rows = service.list_messages(session, direction=direction, limit=10_000)
            session.expunge_all()
            return rows

    def rejections(self) -> list[ExchangeRejection]:
        """The inbox's refusals."""
        with unit_of_work(self.runtime.read_sessions) as session:
            rows = service.list_rejections(session, limit=1000)
            session.expunge_all()
            return rows

    def events(self, type_: str) -> list[dict[str, Any]]:
        """Payloads of outbox events of `type_`."""
        with self.runtime.engine.connect() as conn:
            rows = conn.execute(text("SELECT payload FROM outbox_events WHERE type = :t ORDER BY seq"), {"t": type_})
            return [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in rows]

    def register(self, other: Side) -> None:
        """Register `other` as our partner, with its published key."""
        with unit_of_work(self.runtime.sessions) as session:
            service.save_partner(session, self.ex, code=other.code, name=other.code.upper(), base_url=other.url,
                                 keys=[other.ex.signer.public_jwk()], active=True, actor="test")  # fmt: skip

    def close(self) -> None:
        """Stop and release."""
        self.stop()
        self.dispatcher.close()
        self.runtime.close()


@pytest.fixture
def second_database_url(database_url: str, _templates: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """Another freshly migrated database on the same backend as `database_url` (the other administration's)."""
    if database_url.startswith("sqlite"):
        target = tmp_path / "partner.db"
        shutil.copyfile(_templates["sqlite"], target)
        yield f"sqlite:///{target}"
        return
    pg = pg_server_url()
    assert pg
    name = f"sg_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine(pg)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{_templates["postgresql"]}"'))
    yield make_url(pg).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pair_factory(database_url: str, second_database_url: str, tmp_path: Path) -> Iterator[Any]:
    """make(**overrides of the receiving side) → (vn, cn): registered with each other, cn served, vn served."""
    made: list[Side] = []

    def make(vn_overrides: dict[str, Any] | None = None, cn_overrides: dict[str, Any] | None = None,
             serve_cn: bool = True) -> tuple[Side, Side]:  # fmt: skip
        vn = Side("vn-kimthanh", database_url, tmp_path / "vn", **(vn_overrides or {}))
        cn = Side("cn-hekou", second_database_url, tmp_path / "cn", **(cn_overrides or {}))
        made.extend([vn, cn])
        vn.register(cn)
        cn.register(vn)
        vn.start()
        if serve_cn:
            cn.start()
        return vn, cn

    yield make
    for side in made:
        side.close()


@pytest.fixture
def pair(pair_factory: Any) -> tuple[Side, Side]:
    """The Vietnamese side (sends) and the Chinese side (receives), both up."""
    vn, cn = pair_factory()
    return vn, cn


# The message types' fixtures (one side of the border, an import's and an export's body): sides.py.
from tests.services.exchange.sides import export_body, import_body, side_fixture  # noqa: E402, F401
