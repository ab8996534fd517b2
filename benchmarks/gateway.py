"""The gateway's cost: filings sent to the declarations process directly vs through `smartgate gateway` in front
of it, alternating rounds in the same run, same database.

Usage: python benchmarks/gateway.py [--seconds 30] [--rounds 3] [--clients 16] [--backend sqlite|postgresql]
Prints req/s, latency and CPU per request of both paths (the gateway's own CPU for the second), and the ratio.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import LoadResult, free_port, run_load, start_server, stop_server, wait_quiet
from benchmarks.api_filing import database, drop, filing_body, migrate_with_trader_key, server_env


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30, help="measured time per path, over all rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        url, dbname = database(args.backend, tmp)
        secret = secrets.token_urlsafe(40)
        servers = []
        try:
            key = migrate_with_trader_key(url, secret)
            env = server_env(url, secret, tmp / "var")
            python = sys.executable
            service_port, gateway_port = free_port(), free_port()
            serve = [python, "-m", "api.cli", "serve", "--services", "declarations", "--no-console",
                     "--host", "127.0.0.1", "--port", str(service_port)]  # fmt: skip
            service = start_server(serve, env=env, port=service_port)
            servers.append(service)
            gateway = start_server([python, "-m", "api.cli", "gateway", "--route",
                                    f"declarations=http://127.0.0.1:{service_port}", "--host", "127.0.0.1",
                                    "--port", str(gateway_port)], env=env, port=gateway_port)  # fmt: skip
            servers.append(gateway)
            body = filing_body()

            def request(i: int) -> tuple[str, str, dict[str, str], bytes]:
                headers = {"content-type": "application/json", "authorization": f"Bearer {key}",
                           "idempotency-key": f"bench-{uuid.uuid4().hex}"}  # fmt: skip
                return "POST", "/api/v1/declarations?submit=true", headers, body

            paths = {"direct": (service_port, service.pid), "via gateway": (gateway_port, gateway.pid)}
            results: dict[str, LoadResult] = {}
            for n in range(args.rounds):
                for name, (port, pid) in paths.items():
                    wait_quiet([p.pid for p in servers])
                    res = run_load(f"http://127.0.0.1:{port}", request, clients=args.clients,
                                   seconds=args.seconds / args.rounds, warmup=3.0 if n == 0 else 0.5,
                                   server_pid=pid)  # fmt: skip
                    print(f"[{args.backend}] round {n + 1}: {res.line(name)}")
                    results[name] = results[name] + res if name in results else res
        finally:
            for proc in servers:
                stop_server(proc)
            drop(dbname)
    direct, via = results["direct"], results["via gateway"]
    print(f"[{args.backend}] all rounds: {direct.line('direct')}")
    print(f"[{args.backend}] all rounds: {via.line('via gateway')}")
    print(f"[{args.backend}] via gateway / direct = {via.rps / direct.rps:.2f} req/s; p99 {via.pct(99):.1f} vs "
          f"{direct.pct(99):.1f} ms; the gateway's own CPU {via.cpu_ms_per_request:.2f} ms per request (the "
          f"declarations process: {direct.cpu_ms_per_request:.2f} ms)")  # fmt: skip


if __name__ == "__main__":
    main()
