"""Both sides of the crossing on one machine (`make run-pair`, scripts/run-pair.sh): the Vietnamese administration
(Kim Thành, `vn-kimthanh`) and the Chinese one (Hekou, `cn-hekou`), each with its own database, port, ledger key and
demo keys, each running a C2SP witness for the other's log and listing the other's witness in its checkpointer, so
that every checkpoint of one side is cosigned by the other administration.

    python -m api.pair [--var-dir var/pair] [--database-url postgresql://postgres@127.0.0.1:5432/smartgate_pair]
                       [--vn-port 8000] [--cn-port 8001] [--vn-witness-port 8070] [--cn-witness-port 8071]

Without --database-url each side keeps a SQLite file under var/pair/<side>/; with one, the sides get the databases
`<name>_vn` and `<name>_cn` on that server (created when missing). Keys live in var/pair/<side>/ (mode 0600) and are
kept across runs, so each log keeps its key and each witness its memory. Ctrl-C stops everything.

The Python core (`Pair`) is what tests/api/test_pair.py starts; the shell script only calls `python -m api.pair`.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.kernel.administration import PROFILES, Administration

SMARTGATE = str(Path(sys.executable).parent / "smartgate")
SIDES = {"vn": "vn-kimthanh", "cn": "cn-hekou"}
READY_TIMEOUT_SECONDS = 120.0


class PairError(RuntimeError):
    """The pair could not be prepared or started; the message says which side and step."""


@dataclass
class Side:
    """One administration of the pair: where its state lives and where it listens."""

    key: str  # "vn" | "cn"
    administration: Administration
    var_dir: Path
    port: int
    witness_port: int
    database_url: str = ""  # empty: SQLite under var_dir
    host: str = "127.0.0.1"
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def witness_url(self) -> str:
        return f"http://{self.host}:{self.witness_port}"

    @property
    def ledger_key_file(self) -> Path:
        return self.var_dir / "ledger.key"

    @property
    def witness_key_file(self) -> Path:
        return self.var_dir / "witness.key"

    @property
    def witness_state(self) -> Path:
        return self.var_dir / "witness.sqlite"

    def ledger_skey(self) -> str:
        return self.ledger_key_file.read_text().strip()

    def ledger_vkey(self) -> str:
        from ledger.keys import load_signer

        return load_signer(self.ledger_skey()).verifier.vkey

    def witness_vkey(self) -> str:
        from ledger.witness import Cosigner

        return Cosigner.from_skey(self.witness_key_file.read_text()).verifier.vkey

    def demo_keys(self) -> dict[str, str]:
        import json

        path = self.var_dir / "demo-keys.json"
        return json.loads(path.read_text()) if path.exists() else {}


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")


def ensure_keys(side: Side) -> None:
    """The side's ledger signing key (named after its log's origin) and its witness key, made once and kept."""
    from ledger.keys import generate_key_string
    from ledger.witness import Cosigner

    side.var_dir.mkdir(parents=True, exist_ok=True)
    if not side.ledger_key_file.exists():
        _write_secret(side.ledger_key_file, generate_key_string(side.administration.ledger_origin))
    if not side.witness_key_file.exists():
        _write_secret(side.witness_key_file, Cosigner.generate(side.administration.witness_name).skey())


def side_databases(server_url: str) -> dict[str, str]:
    """`postgresql://…/NAME` → the URLs of NAME_vn and NAME_cn on the same server."""
    from sqlalchemy.engine import make_url

    from services.kernel.settings import normalise_database_url

    url = make_url(normalise_database_url(server_url))
    base = url.database or "smartgate_pair"
    return {key: url.set(database=f"{base}_{key}").render_as_string(hide_password=False) for key in SIDES}


def create_databases(urls: dict[str, str]) -> None:
    """Create the sides' PostgreSQL databases that do not exist yet (as the URL's role, from its `postgres`)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    for url in urls.values():
        target = make_url(url)
        admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database})
                if exists.first() is None:
                    conn.execute(text(f'CREATE DATABASE "{target.database}"'))
        finally:
            admin.dispose()


def side_env(side: Side, partner: Side) -> dict[str, str]:
    """The environment of a side's processes: its profile, state, key, and the partner's witness as its witness."""
    env = {
        **os.environ,
        "SMARTGATE_ADMINISTRATION": side.administration.code,
        "SMARTGATE_VAR_DIR": str(side.var_dir),
        "SMARTGATE_LEDGER_SIGNING_KEY": side.ledger_skey(),
        # Each checkpoint of this side goes to the witness the other administration runs, which must cosign it.
        "SMARTGATE_LEDGER_WITNESSES": f"{partner.witness_url}|{partner.witness_vkey()}",
        "SMARTGATE_LEDGER_WITNESS_QUORUM": "1",
        "SMARTGATE_LOG_JSON": os.environ.get("SMARTGATE_LOG_JSON", "false"),
        **side.environment,
    }
    env.pop("SMARTGATE_LEDGER_ORIGIN", None)  # the profile's origin: what the partner's witness knows
    env.pop("SMARTGATE_GATE_CODE", None)
    if side.database_url:
        env["SMARTGATE_DATABASE_URL"] = side.database_url
    else:
        env.pop("SMARTGATE_DATABASE_URL", None)
    env.pop("SMARTGATE_MIGRATE_DATABASE_URL", None)
    return env


def _run(side: Side, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([SMARTGATE, *args], env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise PairError(f"{side.key}: smartgate {' '.join(args)} failed: {(done.stderr or done.stdout).strip()[-800:]}")
    return done.stdout


def register_partners(sides: dict[str, Side]) -> None:
    """Register each side as the other's exchange partner.

    TODO(lead, issue 14 merge): helper X1 builds `smartgate exchange partners add …` (and POST
    /api/v1/exchange/partners). Complete this step with it at merge: on each side, add the other side as a partner
    with its administration code (`side.administration.code`), inbox URL (`f"{other.url}/api/v1/exchange/inbox"`)
    and exchange public key (from X1's key file/command), e.g.
        _run(side, side_env(side, other), "exchange", "partners", "add", other.administration.code, "--url", …)
    Everything else of the pair (databases, keys, ledgers, cross-witnessing) works without it.
    """
    return None


class Pair:
    """Both sides: prepare (keys, databases, migrations, demo keys), start (witnesses, then servers), stop."""

    def __init__(self, sides: dict[str, Side], logs: Path) -> None:
        self.sides = sides
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def partner(self, side: Side) -> Side:
        return self.sides["cn" if side.key == "vn" else "vn"]

    def env(self, side: Side) -> dict[str, str]:
        return side_env(side, self.partner(side))

    def prepare(self) -> None:
        """Keys first (each side's configuration names the other's witness key), then each database at head with
        the demo keys, then the partners."""
        for side in self.sides.values():
            ensure_keys(side)
        urls = {k: s.database_url for k, s in self.sides.items() if s.database_url}
        if urls:
            create_databases(urls)
        for side in self.sides.values():
            env = self.env(side)
            _run(side, env, "migrate")
            _run(side, env, "demo", "seed")
        register_partners(self.sides)

    def _start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("ab") as out:
            self.procs[name] = subprocess.Popen(
                args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        # Each process leads its own group (Ctrl-C reaches only us; we stop them): their ids, for whoever must clean up.
        (self.logs / "pids").write_text("".join(f"{n} {p.pid}\n" for n, p in self.procs.items()))

    def start(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Start each side's witness (of the partner's log) and server; wait until all answer (bounded)."""
        for side in self.sides.values():
            partner = self.partner(side)
            log = f"{partner.administration.ledger_origin}={partner.ledger_vkey()}"
            args = [SMARTGATE, "witness", "serve", "--key", str(side.witness_key_file), "--log", log]
            args += ["--state", str(side.witness_state), "--host", side.host, "--port", str(side.witness_port)]
            self._start(f"{side.key}-witness", args, self.env(side))
        for side in self.sides.values():
            self._start(
                f"{side.key}-server",
                [SMARTGATE, "serve", "--host", side.host, "--port", str(side.port)],
                self.env(side),
            )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = {f"{s.key}-witness": f"{s.witness_url}/public-key" for s in self.sides.values()}
        pending |= {f"{s.key}-server": f"{s.url}/readyz" for s in self.sides.values()}
        while pending:
            self.check_alive()
            for name, url in list(pending.items()):
                try:
                    if httpx.get(url, timeout=2).status_code == 200:
                        del pending[name]
                except httpx.HTTPError:
                    pass
            if pending and time.monotonic() > deadline:
                raise PairError(f"not ready within {timeout:.0f} s: {', '.join(sorted(pending))} (logs: {self.logs})")
            if pending:
                time.sleep(0.2)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise PairError(f"{name} exited with {proc.returncode}; see {self.logs / (name + '.log')}")

    def log(self, name: str, tail: int = 2000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM every process group still running; SIGKILL what has not ended within 20 s."""
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)

    def usage(self) -> str:
        """How to use each side: URLs, console, demo keys, ledger and witness keys."""
        lines = []
        for side in self.sides.values():
            admin = side.administration
            keys = side.demo_keys()
            lines += [
                f"{admin.name} ({admin.code}; gate {admin.gate_code}, {admin.currency}, "
                f"console in {admin.default_locale})",
                f"  API      {side.url}/docs",
                f"  console  {side.url}/console   (officer key below)",
                f"  ledger   {side.url}/api/v1/ledger/checkpoint   origin {admin.ledger_origin}",
                f"  log key  {side.ledger_vkey()}",
                f"  witness  {side.witness_url}  of {self.partner(side).administration.ledger_origin}"
                f"  vkey {side.witness_vkey()}",
                f"  demo keys ({side.var_dir / 'demo.env'}):",
                *(f"    {name:10s} {key}" for name, key in keys.items()),
                "",
            ]
        vn, cn = self.sides["vn"], self.sides["cn"]
        lines += [
            "A bundle of one side verifies offline against its log key and the other side's witness:",
            f"  smartgate ledger verify-bundle bundle.json --key '{vn.ledger_vkey()}' "
            f"--witness '{cn.witness_vkey()}' --quorum 1",
            f"logs in {self.logs}; Ctrl-C stops both sides.",
        ]
        return "\n".join(lines)


def make_sides(
    var_dir: Path,
    *,
    database_url: str = "",
    vn_port: int = 8000,
    cn_port: int = 8001,
    vn_witness_port: int = 8070,
    cn_witness_port: int = 8071,
    host: str = "127.0.0.1",
) -> dict[str, Side]:
    urls = side_databases(database_url) if database_url else {}
    ports = {"vn": (vn_port, vn_witness_port), "cn": (cn_port, cn_witness_port)}
    return {
        key: Side(
            key=key,
            administration=PROFILES[code],
            var_dir=var_dir / key,
            port=ports[key][0],
            witness_port=ports[key][1],
            database_url=urls.get(key, ""),
            host=host,
        )
        for key, code in SIDES.items()
    }


@contextmanager
def running_pair(sides: dict[str, Side], logs: Path, timeout: float = READY_TIMEOUT_SECONDS) -> Iterator[Pair]:
    """Prepare and start the pair; always stop it."""
    pair = Pair(sides, logs)
    pair.prepare()
    try:
        pair.start(timeout)
        yield pair
    finally:
        pair.stop()


def _say(text: str, *, error: bool = False) -> None:
    stream = sys.stderr if error else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run-pair", description=__doc__.split("\n\n")[0])
    parser.add_argument("--var-dir", type=Path, default=Path(os.environ.get("SMARTGATE_PAIR_VAR_DIR", "var/pair")))
    parser.add_argument("--database-url", default=os.environ.get("SMARTGATE_PAIR_DATABASE_URL", ""))
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--vn-port", type=int, default=int(os.environ.get("VN_PORT", "8000")))
    parser.add_argument("--cn-port", type=int, default=int(os.environ.get("CN_PORT", "8001")))
    parser.add_argument("--vn-witness-port", type=int, default=int(os.environ.get("VN_WITNESS_PORT", "8070")))
    parser.add_argument("--cn-witness-port", type=int, default=int(os.environ.get("CN_WITNESS_PORT", "8071")))
    parser.add_argument("--timeout", type=float, default=READY_TIMEOUT_SECONDS, help="seconds to wait for health")
    args = parser.parse_args(argv)
    sides = make_sides(
        args.var_dir,
        database_url=args.database_url,
        vn_port=args.vn_port,
        cn_port=args.cn_port,
        vn_witness_port=args.vn_witness_port,
        cn_witness_port=args.cn_witness_port,
        host=args.host,
    )
    stop = {"signal": 0}

    def _stop(signum: int, _frame: object) -> None:
        stop["signal"] = signum

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    pair = Pair(sides, args.var_dir / "logs")
    try:
        _say("run-pair: preparing both sides (keys, databases, migrations, demo keys)…")
        pair.prepare()
        pair.start(args.timeout)
        _say(pair.usage())
        while not stop["signal"]:
            pair.check_alive()
            time.sleep(0.5)
        _say("run-pair: stopping both sides")
        return 0
    except PairError as exc:
        _say(f"run-pair: error: {exc}", error=True)
        return 1
    finally:
        pair.stop()


if __name__ == "__main__":
    sys.exit(main())
