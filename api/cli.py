"""The `smartgate` command line: serve, migrate, keys, demo data, and the sub-commands of each area."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

app = typer.Typer(
    help="smartgate: the digital platform of a smart road border gate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Create and revoke API keys.", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data for the embedded platform.", no_args_is_help=True)
declarations_app = typer.Typer(help="Declaration housekeeping.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(demo_app, name="demo")
app.add_typer(declarations_app, name="declarations")
tariff_app = typer.Typer(help="Tariff schedule and exchange rates.", no_args_is_help=True)
app.add_typer(tariff_app, name="tariff")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line error and exit non-zero."""
    typer.echo(f"smartgate: error: {message}", err=True)
    raise typer.Exit(code)


def _settings():
    from pydantic import ValidationError

    from services.kernel.settings import KernelSettings

    try:
        return KernelSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"invalid settings: {first['msg']}", 2)


def _sessions(settings):
    from services.kernel.database import make_engine, make_sessionmaker

    return make_sessionmaker(make_engine(settings.resolved_database_url))


@app.command()
def migrate(
    grant: Annotated[
        str | None,
        typer.Option(
            "--grant",
            metavar="ROLE",
            help="PostgreSQL: then create/grant the services' ROLE (SELECT, INSERT on ledger tables; no DDL)",
        ),
    ] = None,
) -> None:
    """Create or upgrade the database schema of every service (Alembic), as SMARTGATE_MIGRATE_DATABASE_URL's role
    (the schema owner) when set, else SMARTGATE_DATABASE_URL's."""
    from sqlalchemy.exc import OperationalError

    from services.kernel.migrate import upgrade

    settings = _settings()
    url = settings.resolved_migrate_database_url
    if grant is not None and not url.startswith("postgresql"):
        fail("--grant needs PostgreSQL (SQLite has no roles: see docs/ledger.md on what its file's holder can do)", 2)
    try:
        upgrade(url)
    except OperationalError as exc:
        fail(f"cannot reach the database: {str(exc.orig).strip().splitlines()[0]}", 3)
    typer.echo(f"database at head: {_redacted(url)}")
    if grant is not None:
        _grant(url, grant, settings.app_database_password.get_secret_value())


def _grant(url: str, role: str, password: str) -> None:
    from sqlalchemy.exc import DBAPIError

    from ledger.storage import TABLES
    from services.kernel.database import make_engine
    from services.kernel.dbroles import RoleError, grant_service_role

    engine = make_engine(url)
    try:
        granted = grant_service_role(engine, role, append_only=[t.name for t in TABLES], password=password or None)
    except RoleError as exc:
        fail(str(exc), 2)
    except DBAPIError as exc:
        fail(f"cannot grant role {role}: {str(exc.orig).strip().splitlines()[0]}", 3)
    finally:
        engine.dispose()
    typer.echo(
        f"role {granted.role} {'created and ' if granted.created else ''}granted: "
        f"{len(granted.append_only)} append-only tables (SELECT, INSERT), "
        f"{len(granted.read_write)} service tables (SELECT, INSERT, UPDATE, DELETE), "
        f"{len(granted.read_only)} read-only"
    )


db_app = typer.Typer(help="Database administration (run as the schema owner).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("grant")
def db_grant(role: Annotated[str, typer.Argument(help="The login role the services connect as")]) -> None:
    """Create (if missing) and grant the services' PostgreSQL role, connected as SMARTGATE_MIGRATE_DATABASE_URL
    (else SMARTGATE_DATABASE_URL); its password, if any, from SMARTGATE_APP_DATABASE_PASSWORD. Idempotent."""
    settings = _settings()
    url = settings.resolved_migrate_database_url
    if not url.startswith("postgresql"):
        fail("database roles need PostgreSQL (SQLite has no roles: see docs/ledger.md)", 2)
    _grant(url, role, settings.app_database_password.get_secret_value())


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (PostgreSQL only)")] = 1,
    services: Annotated[
        str | None,
        typer.Option(help="Comma-separated services this process runs (default: SMARTGATE_SERVICES, i.e. all)"),
    ] = None,
    console: Annotated[
        bool | None, typer.Option("--console/--no-console", help="Serve the officers' console here (default: yes)")
    ] = None,
) -> None:
    """Run the platform (all services in one process, or those of --services) with uvicorn."""
    import uvicorn

    from api.app import configure_process, create_app
    from services.kernel.migrate import is_up_to_date

    # Through the environment, so that every worker process of --workers N reads the same.
    if services is not None:
        os.environ["SMARTGATE_SERVICES"] = services
    if console is not None:
        os.environ["SMARTGATE_CONSOLE"] = "true" if console else "false"
    settings = _settings()
    url = settings.resolved_database_url
    if workers > 1 and not url.startswith("postgresql"):
        fail("several worker processes need PostgreSQL (SQLite has one writer); use --workers 1", 2)
    if workers < 1:
        fail("--workers must be at least 1", 2)
    if not is_up_to_date(url):
        fail("the database is not migrated; run `smartgate migrate` first", 3)
    configure_process(settings)
    from api.app import enabled_services

    console_note = ", review console at /console" if settings.console else ""
    typer.echo(
        f"smartgate ({', '.join(enabled_services(settings)) or 'no service'}) on http://{host}:{port} "
        f"(docs at /docs{console_note}), database {_redacted(url)}"
    )
    if workers > 1:
        # Each worker builds its own app from the environment. Each relays the outbox (events are claimed with
        # SKIP LOCKED); the checkpointer and the expiry passes run in the one holding the leader lock.
        os.environ["SMARTGATE_WORKERS"] = str(workers)
        uvicorn.run(
            "api.app:worker_app", factory=True, workers=workers, host=host, port=port, log_config=None, access_log=False
        )
        return
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False)


@app.command()
def gateway(
    route: Annotated[
        list[str],
        typer.Option(help="NAME=URL of a service process, once per service (e.g. declarations=http://10.0.0.5:8000)"),
    ],
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
) -> None:
    """Run the gateway of the distributed deployment: one address, each request passed to its service, the console."""
    import uvicorn

    from api.app import configure_process
    from api.gateway import create_gateway, parse_routes

    try:
        routes = parse_routes(route)
    except ValueError as exc:
        fail(str(exc), 2)
    settings = _settings()
    configure_process(settings)
    typer.echo(f"smartgate gateway on http://{host}:{port} (docs at /docs, review console at /console): "
               + ", ".join(f"{n} -> {u}" for n, u in routes.items()))  # fmt: skip
    uvicorn.run(create_gateway(settings, routes), host=host, port=port, log_config=None, access_log=False)


@keys_app.command("create")
def keys_create(
    role: Annotated[
        str,
        typer.Option(
            help="trader | officer | supervisor | treasury | gate | engineer | admin | producer | packhouse | inspector"
        ),
    ],
    org: Annotated[
        str | None, typer.Option(help="Organisation name (trader, producer, packhouse keys; created if missing)")
    ] = None,
    label: Annotated[str, typer.Option(help="Free text to recognise the key")] = "",
) -> None:
    """Create an API key and print it (it is shown only this once)."""
    from services.kernel.auth import ORGANISATION_ROLES, Role, create_key, get_or_create_organisation
    from services.kernel.database import unit_of_work

    try:
        the_role = Role(role)
    except ValueError:
        fail(f"unknown role '{role}'; choose one of: {', '.join(r.value for r in Role)}", 2)
    if the_role in ORGANISATION_ROLES and not org:
        fail(f"a {the_role.value} key needs --org NAME", 2)
    if the_role not in ORGANISATION_ROLES and org:
        fail("only trader, producer and packhouse keys belong to an organisation; drop --org", 2)
    settings = _settings()
    with unit_of_work(_sessions(settings)) as session:
        organisation = get_or_create_organisation(session, name=org) if org else None
        row, clear = create_key(
            session, secret_key=settings.secret_key, role=the_role, organisation=organisation, label=label
        )
        key_id = row.id
    typer.echo(json.dumps({"key_id": key_id, "role": the_role.value, "organisation": org, "api_key": clear}))


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id printed at creation")]) -> None:
    """Revoke an API key by its id (an officer's declarations waiting for its decision go to others on duty)."""
    import services.declarations.review  # noqa: F401 - registers what a revoked officer key lets go of
    from services.kernel.auth import revoke_key
    from services.kernel.database import unit_of_work

    settings = _settings()
    with unit_of_work(_sessions(settings)) as session:
        if not revoke_key(session, key_id=key_id):
            fail(f"no active key with id '{key_id}'", 4)
    typer.echo(f"revoked {key_id}")


@demo_app.command("seed")
def demo_seed() -> None:
    """Create the demo organisations and a key per role (development only); print the keys."""
    from services.kernel.administration import administration
    from services.kernel.auth import ApiKey, Role, create_key, get_or_create_organisation, hash_key
    from services.kernel.database import unit_of_work

    settings = _settings()
    if settings.environment != "development":
        fail("demo data is for development only", 2)
    keys_file = settings.var_dir / "demo-keys.json"
    saved: dict[str, str] = json.loads(keys_file.read_text()) if keys_file.exists() else {}
    with unit_of_work(_sessions(settings)) as session:
        vietnamese = ("Lao Cai Fruit Export JSC", "0100233488")
        chinese = ("Hekou Border Trading Co.", "91110000600037341L")
        # The demo trader is a trader of the own side (services/kernel/administration.py); trader_b is across.
        own, other = (chinese, vietnamese) if administration(settings).country == "CN" else (vietnamese, chinese)
        orgs = {
            "trader": get_or_create_organisation(session, name=own[0], tax_id=own[1]),
            "trader_b": get_or_create_organisation(session, name=other[0], tax_id=None),
            # Traceability (issue 15): a farm cooperative and a packing house keep their diaries; plant protection
            # inspects (the README's lychee pallet walk-through).
            "producer": get_or_create_organisation(session, name="HTX Vải thiều Bắc Hà", tax_id=None),
            "packhouse": get_or_create_organisation(session, name="Đóng gói Lào Cai", tax_id=None),
        }
        for name, role in (
            ("trader", Role.trader),
            ("trader_b", Role.trader),
            ("officer", Role.officer),
            ("supervisor", Role.supervisor),
            ("treasury", Role.treasury),
            ("gate", Role.gate),
            ("admin", Role.admin),
            ("issuer", Role.origin_issuer),  # issues Form E certificates (POST /api/v1/exchange/origin-certificates)
            ("producer", Role.producer),
            ("packhouse", Role.packhouse),
            ("inspector", Role.inspector),
        ):
            clear = saved.get(name)
            if clear:
                row = session.query(ApiKey).filter_by(key_hash=hash_key(settings.secret_key, clear)).one_or_none()
                if row is not None and row.revoked_at is None:
                    continue
            _, saved[name] = create_key(
                session,
                secret_key=settings.secret_key,
                role=role,
                organisation=orgs.get(name),
                label=f"demo {name}",
            )
        _seed_rates_and_duty(session, settings, saved)
    keys_file.parent.mkdir(parents=True, exist_ok=True)
    keys_file.write_text(json.dumps(saved, indent=2))
    os.chmod(keys_file, 0o600)
    env_file = settings.var_dir / "demo.env"
    env_file.write_text("".join(f"export {name.upper()}_KEY={key}\n" for name, key in saved.items()))
    typer.echo("demo API keys (also in var/demo.env; `source var/demo.env` to use them in a shell):")
    for name, key in saved.items():
        typer.echo(f"  {name:10s} {key}")


@tariff_app.command("load")
def tariff_load(path: Annotated[Path, typer.Argument(help="CSV with the columns of the seed schedule")]) -> None:
    """Load (insert or replace) a tariff schedule from CSV; the whole file is validated first."""
    from services.declarations.tariff import TariffFileError, load, parse_csv
    from services.kernel.database import unit_of_work

    try:
        rows = parse_csv(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        fail(f"{path}: no such file", 2)
    except (TariffFileError, UnicodeDecodeError) as exc:
        fail(f"{path}: {exc}", 2)
    settings = _settings()
    with unit_of_work(_sessions(settings)) as session:
        inserted, updated = load(session, rows)
    typer.echo(json.dumps({"file": str(path), "inserted": inserted, "updated": updated}))


@tariff_app.command("rate")
def tariff_rate(
    currency: Annotated[str, typer.Argument(help="ISO 4217 code, e.g. USD")],
    vnd_per_unit: Annotated[str, typer.Argument(help="VND per unit, e.g. 25400")],
    day: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: today in Hanoi)")] = None,
    source: Annotated[str, typer.Option(help="Where the rate comes from")] = "",
) -> None:
    """Post a daily exchange rate to VND (the rate of the registration date applies)."""
    import datetime as dt
    from decimal import Decimal, InvalidOperation

    from services.declarations.assessment import VN_TZ
    from services.declarations.codes import currencies
    from services.declarations.duties import MAX_VND_PER_UNIT
    from services.declarations.tariff import post_rate
    from services.kernel.database import unit_of_work

    if currency not in currencies():
        fail(f"'{currency}' is not an ISO 4217 currency code", 2)
    try:
        rate = Decimal(vnd_per_unit)
        the_day = dt.date.fromisoformat(day) if day else dt.datetime.now(VN_TZ).date()
    except (InvalidOperation, ValueError) as exc:
        fail(f"invalid rate or day: {exc}", 2)
    if not rate.is_finite() or rate <= 0:
        fail("the rate must be a positive number", 2)
    if rate > MAX_VND_PER_UNIT:
        fail(f"the rate must be at most {MAX_VND_PER_UNIT:,} VND per unit", 2)
    settings = _settings()
    with unit_of_work(_sessions(settings)) as session:
        post_rate(session, currency=currency, day=the_day, vnd_per_unit=rate, source=source, actor="cli")
    typer.echo(json.dumps({"currency": currency, "day": the_day.isoformat(), "vnd_per_unit": str(rate)}))


def _seed_rates_and_duty(session, settings, saved: dict[str, str]) -> None:
    """Demo exchange rates for the last week and the demo officer on duty."""
    import datetime as dt

    from services.declarations.assessment import VN_TZ
    from services.declarations.models import OfficerDuty
    from services.declarations.tariff import DEMO_RATES, post_rate
    from services.kernel.auth import ApiKey, hash_key

    today = dt.datetime.now(VN_TZ).date()
    for back in range(7):
        for currency, rate in DEMO_RATES.items():
            post_rate(
                session,
                currency=currency,
                day=today - dt.timedelta(days=back),
                vnd_per_unit=rate,
                source="demo rate",
                actor="demo",
            )
    officer = session.query(ApiKey).filter_by(key_hash=hash_key(settings.secret_key, saved["officer"])).one()
    if session.get(OfficerDuty, officer.id) is None:
        session.add(OfficerDuty(officer_key_id=officer.id, on_duty=True, assigned_count=0))


@declarations_app.command("expire")
def declarations_expire() -> None:
    """Expire declarations not presented at the gate within the configured days (what the scheduler runs)."""
    from services.declarations.service import expire_stale
    from services.kernel.database import unit_of_work, utcnow

    settings = _settings()
    with unit_of_work(_sessions(settings)) as session:
        expired = expire_stale(session, now=utcnow(), days=settings.declaration_expiry_days)
    typer.echo(json.dumps({"expired": expired}))


def main() -> None:
    """Entry point that turns stray exceptions into a one-line error."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


def _mount_optional() -> None:
    """Mount the library CLIs that are installed (each keeps its heavy imports inside its commands)."""
    for module, name in (
        ("simulator.cli", "sim"),
        ("ocr.cli", "ocr"),
        ("services.provenance.cli", "ledger"),
        ("services.exchange.cli", "exchange"),
        ("ledger.witness_cli", "witness"),
        ("riskmodel.cli", "risk"),
        ("api.trace", "trace"),
    ):
        try:
            sub = __import__(module, fromlist=["app"]).app
        except ImportError:
            continue
        app.add_typer(sub, name=name)


_mount_optional()
try:
    from api.trace import register_event_hashers

    register_event_hashers()  # `ledger verify-bundle` recomputes the CBV 2.0 hashes of a trace bundle's events
except ImportError:  # pragma: no cover - an install without the traceability service
    pass


def _risk_model_commands() -> None:
    """`smartgate risk model store` and `export-history`: the learned model's steps that need the database (the
    riskmodel library's own commands never touch it)."""
    try:
        from riskmodel import cli as risk_cli
        from riskmodel.cli import model_app
    except ImportError:  # pragma: no cover - an install without the risk model library
        return

    def history() -> list[Any]:
        """`train|evaluate --from-database`: the decided declarations of the configured database."""
        from services.declarations import riskmodels
        from services.kernel.database import unit_of_work

        with unit_of_work(_sessions(_settings())) as session:
            return riskmodels.decided_history(session)

    risk_cli.history_source = history

    @model_app.command("store")
    def store(
        model: Annotated[Path, typer.Option("--model", help="A model written by `smartgate risk model train`")],
        version: Annotated[str, typer.Option("--version", help="The new model version (immutable)")],
        value_currency: Annotated[
            str, typer.Option("--value-currency", help="Currency of the training values (KCS: KRW)")
        ] = "VND",
    ) -> None:
        """Store a model in the configured database as a new, inactive version (as the admin API's upload does);
        then dry run, shadow and activate it through the API."""
        import re

        from services.declarations import riskmodels
        from services.kernel.auth import Principal, Role
        from services.kernel.database import unit_of_work
        from services.kernel.errors import AppError

        if not re.fullmatch(r"[0-9A-Za-z.\-_]{1,32}", version):
            fail("a version is 1-32 letters, digits, dots, dashes or underscores", 2)
        if not re.fullmatch(r"[A-Z]{3}", value_currency):
            fail("--value-currency is an ISO 4217 code such as KRW or VND", 2)
        if not model.is_file():
            fail(f"{model}: no such file", 2)
        admin = Principal(key_id="cli", role=Role.admin, organisation_id=None)
        try:
            with unit_of_work(_sessions(_settings())) as session:
                row = riskmodels.upload(session, principal=admin, version=version, data=model.read_bytes(),
                                        value_currency=value_currency)  # fmt: skip
                out = {"version": row.version, "sha256": row.sha256, "state": row.state}
        except AppError as exc:
            fail(exc.detail, 2)
        typer.echo(json.dumps(out))

    @model_app.command("export-history")
    def export_history(
        out: Annotated[Path, typer.Option("--out", help="Directory to write train.csv and valid.csv to")],
        valid_share: Annotated[
            float, typer.Option("--valid-share", min=0.0, max=0.5, help="Latest share of lines kept for valid.csv")
        ] = 0.2,
    ) -> None:
        """Write the platform's decided import declarations (officers' violation flags as labels, values in VND) in
        the KCS columns, split by time: `smartgate risk model train --dataset kcs --data DIR` trains on them; store
        the result with --value-currency VND."""
        from riskmodel import kcs
        from services.declarations import riskmodels
        from services.kernel.database import unit_of_work

        if not out.is_dir():
            fail(f"{out}: no such directory", 2)
        with unit_of_work(_sessions(_settings())) as session:
            items, labels = riskmodels.labelled_history(session)
        if not items:
            fail("no decided import declarations yet: nothing to learn from", 2)
        cut = len(items) - int(len(items) * valid_share)
        kcs.write_csv(out / "train.csv", items[:cut], labels[:cut])
        if cut < len(items):
            kcs.write_csv(out / "valid.csv", items[cut:], labels[cut:])
        typer.echo(json.dumps({"lines": len(items), "violations": sum(labels), "train": cut,
                               "valid": len(items) - cut}))  # fmt: skip


_risk_model_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
