"""The gateway's cost against nginx: the same requests sent to the declarations process directly, through
`smartgate gateway`, and through nginx with deploy/nginx.conf.template, alternating rounds in the same run.

Usage: python benchmarks/gateway.py [--seconds 12] [--rounds 2] [--clients 16] [--backend sqlite|postgresql]
(PostgreSQL is the default when SMARTGATE_TEST_DATABASE_URL is set, or with --pg; its admin URL is
SMARTGATE_BENCH_PG_URL as in api_filing.py.) Three kinds of request: GET /healthz (each answers it itself: the
proxy's floor), GET of a trader's declaration list (20 rows), POST of a filing with an Idempotency-Key. Prints, per
kind and path, req/s, p50/p95/p99 and the CPU seconds per 1,000 requests of the proxy process (nginx: master and
worker) and of the service behind it, and the ratios against the direct path. Everything on 127.0.0.1; the run
lasts about 3 x 3 x --seconds plus warm-ups. Needs nginx (`NGINX=1 scripts/system-deps.sh`); without it, it
measures direct and gateway only and says so.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _nginx
from benchmarks._harness import LoadResult, free_port, run_load, start_server, stop_server, wait_quiet
from benchmarks.api_filing import database, drop, filing_body, migrate_with_trader_key, server_env

Request = tuple[str, str, dict[str, str], bytes]


def kinds(key: str, body: bytes) -> dict[str, tuple[Callable[[int], Request], int]]:
    """{kind: (make_request(i), expected status)}. Every request carries an X-Request-ID, as a client's would."""
    auth = {"authorization": f"Bearer {key}"}

    def healthz(i: int) -> Request:
        return "GET", "/healthz", {"x-request-id": f"bench-{i}"}, b""

    def listing(i: int) -> Request:
        return "GET", "/api/v1/declarations?limit=20", {**auth, "x-request-id": f"bench-{i}"}, b""

    def filing(i: int) -> Request:
        headers = {**auth, "content-type": "application/json", "idempotency-key": f"bench-{uuid.uuid4().hex}",
                   "x-request-id": f"bench-{i}"}  # fmt: skip
        return "POST", "/api/v1/declarations?submit=true", headers, body

    return {"GET /healthz": (healthz, 200), "GET declaration list": (listing, 200), "POST filing": (filing, 201)}


def check_paths(ports: dict[str, int], key: str, body: bytes) -> None:
    """Before measuring: every path routes a filing and a list, and carries the client's X-Request-ID both ways."""
    for name, port in ports.items():
        base = f"http://127.0.0.1:{port}"
        headers = {"authorization": f"Bearer {key}", "x-request-id": f"check-{name}"}
        for _ in range(10 if name == "direct" else 1):  # the list has 20 rows before it is measured
            filed = httpx.post(f"{base}/api/v1/declarations?submit=true", content=body, timeout=30,
                               headers={**headers, "content-type": "application/json",
                                        "idempotency-key": uuid.uuid4().hex})  # fmt: skip
            if filed.status_code != 201 or filed.headers.get("x-request-id") != f"check-{name}":
                raise SystemExit(f"{name}: filing answered {filed.status_code} {filed.text[:300]}")
        listed = httpx.get(f"{base}/api/v1/declarations?limit=20", headers=headers, timeout=30)
        if listed.status_code != 200 or listed.headers.get("x-request-id") != f"check-{name}":
            raise SystemExit(f"{name}: list answered {listed.status_code} {listed.text[:300]}")


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12, help="measured time per kind and path, over all rounds")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    default = "postgresql" if os.environ.get("SMARTGATE_TEST_DATABASE_URL") else "sqlite"
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default=default)
    parser.add_argument("--pg", action="store_const", const="postgresql", dest="backend", help="--backend postgresql")
    args = parser.parse_args()
    nginx = _nginx.nginx_binary()
    if nginx is None:
        print("nginx is not installed (NGINX=1 scripts/system-deps.sh): measuring direct and gateway only")
    results: dict[tuple[str, str], LoadResult] = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        url, dbname = database(args.backend, tmp)
        secret = secrets.token_urlsafe(40)
        servers: list[subprocess.Popen[bytes]] = []
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
            paths = {"direct": (service_port, service.pid, None), "gateway": (gateway_port, gateway.pid, service.pid)}
            if nginx is not None:
                nginx_port, closed = free_port(), free_port()
                # The same routes as the gateway: declarations only; the other services' upstreams are a closed
                # port (both proxies answer 503 there), and everything not under /api goes to the gateway.
                values = dict.fromkeys(_nginx.VARIABLES, f"127.0.0.1:{closed}") | {
                    "SMARTGATE_LISTEN": f"127.0.0.1:{nginx_port}",
                    "SMARTGATE_GATEWAY": f"127.0.0.1:{gateway_port}",
                    "SMARTGATE_DECLARATIONS": f"127.0.0.1:{service_port}",
                }
                main_conf = _nginx.write_config(tmp / "nginx", values)
                checked = _nginx.check(nginx, main_conf)
                if checked.returncode != 0:
                    raise SystemExit(f"nginx -t refused the rendered template: {checked.stderr}")
                proxy = start_server(_nginx.command(nginx, main_conf), env={}, port=nginx_port)
                servers.append(proxy)
                paths["nginx"] = (nginx_port, proxy.pid, service.pid)
            body = filing_body()
            check_paths({name: port for name, (port, _, _) in paths.items()}, key, body)
            pids = [p.pid for p in servers]
            for n in range(args.rounds):
                # The machine's speed drifts (shared cores): short alternating windows put every path under it.
                for kind, (make, status) in kinds(key, body).items():
                    for name, (port, pid, upstream) in paths.items():
                        wait_quiet(pids)
                        res = run_load(f"http://127.0.0.1:{port}", make, clients=args.clients,
                                       seconds=args.seconds / args.rounds, warmup=2.0 if n == 0 else 0.5,
                                       ok_status=status, server_pid=pid, upstream_pid=upstream)  # fmt: skip
                        print(f"[{args.backend}] round {n + 1}: {kind:<21} {res.line(name)}", flush=True)
                        results[kind, name] = results[kind, name] + res if (kind, name) in results else res
        finally:
            for proc in reversed(servers):
                stop_server(proc)
            drop(dbname)
    report(args, results)


def per_1000(cpu_seconds: float, res: LoadResult) -> float:
    """CPU seconds per 1,000 successful requests."""
    ok = res.requests - res.errors
    return cpu_seconds * 1000 / ok if ok else float("nan")


def report(args: argparse.Namespace, results: dict[tuple[str, str], LoadResult]) -> None:
    """The table of every kind and path, with the ratios against direct."""
    print(f"\n[{args.backend}] {args.clients} clients, {args.seconds:g} s per kind and path in {args.rounds} rounds; "
          "CPU in seconds per 1,000 requests; ratios against direct, same run")  # fmt: skip
    print(f"{'request':<21} {'path':<8} {'req/s':>8} {'x direct':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
          f"{'p99 +ms':>7} {'proxy CPU':>9} {'service CPU':>11} {'errors':>9}")  # fmt: skip
    for kind in dict.fromkeys(k for k, _ in results):
        direct = results[kind, "direct"]
        for name in ("direct", "gateway", "nginx"):
            res = results.get((kind, name))
            if res is None:
                continue
            proxy = per_1000(res.server_cpu_seconds, res) if name != "direct" else 0.0
            service = per_1000(res.upstream_cpu_seconds if name != "direct" else res.server_cpu_seconds, res)
            print(f"{kind:<21} {name:<8} {res.rps:8.1f} {res.rps / direct.rps:8.2f} {res.pct(50):7.1f} "
                  f"{res.pct(95):7.1f} {res.pct(99):7.1f} {res.pct(99) - direct.pct(99):+7.1f} {proxy:9.3f} "
                  f"{service:11.3f} {res.errors:>4}/{res.requests:<4}")  # fmt: skip
    if ("POST filing", "nginx") in results:
        gw, ng = results["POST filing", "gateway"], results["POST filing", "nginx"]
        print(f"[{args.backend}] filing: gateway / direct {gw.rps / results['POST filing', 'direct'].rps:.2f}, "
              f"nginx / direct {ng.rps / results['POST filing', 'direct'].rps:.2f}; proxy CPU per 1,000 filings: "
              f"gateway {per_1000(gw.server_cpu_seconds, gw):.2f} s, nginx {per_1000(ng.server_cpu_seconds, ng):.2f} s "
              f"({per_1000(gw.server_cpu_seconds, gw) / per_1000(ng.server_cpu_seconds, ng):.0f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
