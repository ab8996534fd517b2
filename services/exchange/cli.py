"""`smartgate exchange …`: our key, the partners, the messages and their delivery states, and repairs (retry).

Works on the database of SMARTGATE_DATABASE_URL (as the exchange process does); one-line errors, exit code 2 for
what the caller got wrong, 1 for what failed."""

from __future__ import annotations

import json
from typing import Annotated, Any, NoReturn

import typer

app = typer.Typer(help="Exchange with the partner administration: keys, partners, messages, delivery.",
                  no_args_is_help=True)  # fmt: skip
partners_app = typer.Typer(help="The partner administrations and their keys.", no_args_is_help=True)
app.add_typer(partners_app, name="partners")


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"smartgate: error: {message}", err=True)
    raise typer.Exit(code)


def _context() -> tuple[Any, Any]:
    """(exchange settings, session factory)."""
    from pydantic import ValidationError

    from services.exchange.settings import ExchangeSettings
    from services.kernel.database import make_engine, make_sessionmaker

    try:
        settings = ExchangeSettings()
    except ValidationError as exc:
        _fail(f"settings: {exc.errors()[0]['msg']}", 2)
    return settings, make_sessionmaker(make_engine(settings.resolved_database_url))


def _exchange(settings: Any) -> Any:
    from services.exchange.jws import Signer
    from services.exchange.registry import load_message_types
    from services.exchange.service import Exchange
    from services.exchange.settings import KeyConfigError, signing_key

    try:
        return Exchange(settings=settings, signer=Signer.from_seed(*signing_key(settings)), types=load_message_types())
    except KeyConfigError as exc:
        _fail(str(exc), 2)


def _out(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


@app.command("keygen")
def keygen(
    code: Annotated[str, typer.Option("--code", help="Our administration code (names the key id)")] = "",
) -> None:
    """Print a new signing key for SMARTGATE_EXCHANGE_SIGNING_KEY (keep it secret)."""
    from services.exchange.settings import new_key_string, own_code

    typer.echo(new_key_string(code or own_code()))


@app.command("public-key")
def public_key() -> None:
    """Our public key (JWK), what the partner registers."""
    settings, _ = _context()
    ex = _exchange(settings)
    _out({"administration": ex.code, "keys": [ex.signer.public_jwk()]})


@partners_app.command("list")
def partners_list() -> None:
    """Every partner with its keys."""
    from services.exchange import service
    from services.kernel.database import unit_of_work

    _, sessions = _context()
    with unit_of_work(sessions) as session:
        _out([service.partner_json(p) for p in service.list_partners(session)])


@partners_app.command("add")
def partners_add(
    code: Annotated[str, typer.Argument(help="The partner's administration code, e.g. cn-hekou")],
    base_url: Annotated[str, typer.Option("--url", help="Its platform's base URL")],
    name: Annotated[str, typer.Option("--name", help="Its name")] = "",
    key: Annotated[list[str] | None, typer.Option("--key", help="A public JWK (JSON); repeat for several")] = None,
    fetch: Annotated[bool, typer.Option("--fetch", help="Read its keys from <url>/api/v1/exchange/public-key")] = False,
    inactive: Annotated[bool, typer.Option("--inactive", help="Register it switched off")] = False,
) -> None:
    """Register a partner (or replace its URL and keys)."""
    from services.exchange import service
    from services.kernel.database import unit_of_work
    from services.kernel.errors import AppError

    settings, sessions = _context()
    keys: list[dict[str, Any]] = []
    for item in key or []:
        try:
            keys.append(json.loads(item))
        except ValueError:
            _fail(f"--key is not JSON: {item[:60]}", 2)
    if fetch:
        import httpx

        try:
            resp = httpx.get(base_url.rstrip("/") + "/api/v1/exchange/public-key", timeout=10)
            resp.raise_for_status()
            keys.extend(resp.json()["keys"])
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            _fail(f"cannot read the partner's public key: {exc}")
    if not keys:
        _fail("give the partner's key with --key JWK or --fetch", 2)
    try:
        with unit_of_work(sessions) as session:
            row, created = service.save_partner(session, _exchange(settings), code=code, name=name or code,
                                                base_url=base_url, keys=keys, active=not inactive,
                                                actor="cli")  # fmt: skip
            body = service.partner_json(row)
    except AppError as exc:
        _fail(exc.detail, 2)
    _out({"created": created, **body})


@app.command("messages")
def messages(
    direction: Annotated[str | None, typer.Option("--direction", help="in or out")] = None,
    partner: Annotated[str | None, typer.Option("--partner")] = None,
    state: Annotated[str | None, typer.Option("--state")] = None,
    correlation_id: Annotated[str | None, typer.Option("--consignment", help="The correlation id")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
) -> None:
    """Messages and their delivery states, oldest first."""
    from services.exchange import service
    from services.kernel.database import unit_of_work

    if direction not in (None, "in", "out"):
        _fail("--direction is in or out", 2)
    _, sessions = _context()
    with unit_of_work(sessions) as session:
        rows = service.list_messages(session, direction=direction, partner=partner, state=state,
                                     correlation_id=correlation_id, limit=limit)[:limit]  # fmt: skip
        _out([service.message_json(r) for r in rows])


@app.command("status")
def status() -> None:
    """Counts per partner, direction and state; when the next push is due; the latest refusals."""
    from services.exchange import service
    from services.exchange.delivery import due_soon
    from services.kernel.database import unit_of_work

    _, sessions = _context()
    with unit_of_work(sessions) as session:
        due = due_soon(session)
        rejections = [service.rejection_json(r) for r in service.list_rejections(session, limit=10)]
        _out({"partners": service.status_counts(session), "next_attempt_at": due.isoformat() if due else None,
              "rejections": rejections})  # fmt: skip


@app.command("retry")
def retry(
    message: Annotated[str | None, typer.Argument(help="A message id (or row id); none: every pending one")] = None,
    partner: Annotated[str | None, typer.Option("--partner", help="Only this partner's (without a message)")] = None,
) -> None:
    """Make unacknowledged messages due now (the running dispatcher pushes them at its next pass)."""
    from services.exchange import service
    from services.kernel.database import unit_of_work
    from services.kernel.errors import AppError

    _, sessions = _context()
    try:
        with unit_of_work(sessions) as session:
            if message:
                row = service.retry(session, service.get_message(session, message))
                _out({"retried": 1, "message": service.message_json(row)})
            else:
                _out({"retried": service.retry_all(session, partner)})
    except AppError as exc:
        _fail(exc.detail, 2 if exc.status == 404 else 1)
