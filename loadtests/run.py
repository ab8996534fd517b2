"""`make loadtest`: a bounded locust run against a fresh local platform (SQLite in a temporary directory).

Usage: python loadtests/run.py [--users 16] [--spawn-rate 8] [--run-time 30s] [--out out/loadtest] [locust args...]
Migrates a new database, seeds the demo keys and rates, serves on a free loopback port, runs locust headless
against 127.0.0.1 only, writes the CSV stats to --out, stops the server and exits with locust's exit code.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CSV_PREFIX = "smartgate"
# Keys given for another platform must not leak into a run against the fresh one.
KEY_VARIABLES = ("SMARTGATE_LOAD_TRADER_KEY", "SMARTGATE_LOAD_OFFICER_KEY", "SMARTGATE_LOAD_ADMIN_KEY",
                 "SMARTGATE_LOAD_TREASURY_KEY")  # fmt: skip


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The runner's options; anything else is passed to locust."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", "-u", type=int, default=16, help="peak concurrent users (default 16)")
    parser.add_argument("--spawn-rate", "-r", type=float, default=8, help="users started per second (default 8)")
    parser.add_argument("--run-time", "-t", default="30s", help="how long to run, e.g. 30s or 2m (default 30s)")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "loadtest", help="where the CSV stats go")
    args, extra = parser.parse_known_args(argv)
    if any(a == "--host" or a.startswith("--host=") or a == "-H" for a in extra):
        parser.error("the runner targets its own server on 127.0.0.1; --host is not accepted")
    if args.users < 1 or args.spawn_rate <= 0:
        parser.error("--users must be >= 1 and --spawn-rate > 0")
    return args, extra


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def smartgate(args: list[str], env: dict[str, str]) -> None:
    """Run a `smartgate` command to completion; its output is shown only if it fails."""
    done = subprocess.run([str(BIN / "smartgate"), *args], env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"smartgate {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-1500:]}")


def wait_healthy(proc: subprocess.Popen[bytes], port: int, log: Path, timeout_s: float = 60) -> None:
    """Wait until /healthz answers 200, or fail with the tail of the server log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}): {log.read_text()[-1500:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer /healthz within {timeout_s:.0f} s: {log.read_text()[-1500:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(argv: list[str]) -> int:
    """Set up a fresh platform, run locust against it, tear it down; locust's exit code."""
    args, extra = parse_args(argv)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="smartgate-load-") as tmp_name:
        tmp = Path(tmp_name)
        env = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
        env.update(
            SMARTGATE_DATABASE_URL=f"sqlite:///{tmp / 'load.db'}",
            SMARTGATE_VAR_DIR=str(tmp),
            SMARTGATE_ENVIRONMENT="development",
            SMARTGATE_LOG_LEVEL="WARNING",
            # A few simulated users share one key per role, where real traffic has a key per organisation: the
            # per-key rate limit would measure itself, not the platform.
            SMARTGATE_RATE_LIMIT_PER_MINUTE="0",
        )
        smartgate(["migrate"], env)
        smartgate(["demo", "seed"], env)
        port = free_port()
        log = tmp / "server.log"
        with log.open("wb") as log_file:
            server = subprocess.Popen(
                [str(BIN / "smartgate"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_healthy(server, port, log)
                print(f"loadtest: platform on http://127.0.0.1:{port} (SQLite in {tmp})", flush=True)
                command = [
                    sys.executable, "-m", "locust",
                    "-f", str(ROOT / "loadtests" / "locustfile.py"),
                    "--headless", "--only-summary",
                    "--host", f"http://127.0.0.1:{port}",
                    "--users", str(args.users), "--spawn-rate", str(args.spawn_rate), "--run-time", args.run_time,
                    "--stop-timeout", "5",
                    "--csv", str(out / CSV_PREFIX),
                    *extra,
                ]  # fmt: skip
                locust_env = {**env, "SMARTGATE_LOAD_KEYS_FILE": str(tmp / "demo.env")}
                code = subprocess.run(command, env=locust_env, cwd=ROOT).returncode
            finally:
                stop(server)
    print(f"loadtest: locust exit code {code}; CSV stats in {out}/{CSV_PREFIX}_*.csv", flush=True)
    return code


def main() -> None:
    """Entry point: a one-line error and exit code 3 if the platform cannot be set up."""
    try:
        code = run(sys.argv[1:])
    except RuntimeError as exc:
        print(f"loadtest: error: {exc}", file=sys.stderr)
        code = 3
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
