"""Shared benchmark plumbing: start a server process on a free port, drive it with N concurrent clients."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(args: list[str], *, env: dict[str, str], port: int, timeout: float = 30) -> subprocess.Popen[bytes]:
    """Start a server process and wait until /healthz answers."""
    # The server's log goes to a file: an unread pipe fills up and blocks the server mid-run.
    log = tempfile.NamedTemporaryFile(prefix="smartgate-bench-", suffix=".log", delete=False)
    proc = subprocess.Popen(args, env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
    proc.log_path = log.name  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {Path(log.name).read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server process."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by a process and its descendants (Linux /proc; 0 elsewhere)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return 0.0
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == current)
    return total


def wait_quiet(pids: list[int], *, busy: float = 0.05, window: float = 1.0, timeout: float = 120) -> None:
    """Wait until these processes use under `busy` of a core over `window` (background work after a run,
    start-up work such as loading models, must not land in the next measurement)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = sum(tree_cpu_seconds(p) for p in pids)
        time.sleep(window)
        if sum(tree_cpu_seconds(p) for p in pids) - before < busy * window:
            return


@dataclass
class LoadResult:
    """What a fixed-time run measured."""

    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    server_cpu_seconds: float = 0.0
    upstream_cpu_seconds: float = 0.0  # of the process behind a proxy, when run_load was given its pid

    def __add__(self, other: LoadResult) -> LoadResult:
        """Two runs of the same endpoint as one."""
        return LoadResult(
            self.requests + other.requests,
            self.errors + other.errors,
            self.seconds + other.seconds,
            self.latencies_ms + other.latencies_ms,
            self.server_cpu_seconds + other.server_cpu_seconds,
            self.upstream_cpu_seconds + other.upstream_cpu_seconds,
        )

    @property
    def cpu_ms_per_request(self) -> float:
        """Server CPU time per successful request (all its processes), in ms."""
        ok = self.requests - self.errors
        return self.server_cpu_seconds * 1000 / ok if ok else float("nan")

    @property
    def rps(self) -> float:
        """Successful requests per second."""
        return (self.requests - self.errors) / self.seconds

    def pct(self, p: float) -> float:
        """Latency percentile in ms."""
        if not self.latencies_ms:
            return float("nan")
        return statistics.quantiles(self.latencies_ms, n=1000, method="inclusive")[int(p * 10) - 1]

    def line(self, name: str) -> str:
        """One report line."""
        return (
            f"{name:<28} {self.rps:8.1f} req/s  p50 {self.pct(50):6.1f} ms  p95 {self.pct(95):6.1f} ms  "
            f"p99 {self.pct(99):6.1f} ms  server CPU {self.cpu_ms_per_request:5.2f} ms/req  "
            f"errors {self.errors}/{self.requests}"
        )


class HTTPConnection:
    """One keep-alive HTTP/1.1 connection over asyncio streams, for load generation.

    A load generator must cost the server's machine far less than the server: httpx spends about 5 ms of CPU per
    request, so on a 2-core machine it was the bottleneck of the bare endpoint and the source of its latency tail
    (a no-op GET measured p99 ~400 ms). This client sends prebuilt request bytes and reads the response by its
    Content-Length: a few tens of microseconds per request.
    """

    def __init__(self, host: str, port: int) -> None:
        """Bind the address; `request` connects on first use and after the server closes the connection."""
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        """Send one request and return (status, body). A kept-alive connection the server closed meanwhile (its
        keep-alive timeout) is reopened and the request sent again, once, as HTTP clients do."""
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}", f"content-length: {len(body)}"]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        reused = self._writer is not None
        try:
            head = await self._send(data)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            await self.close()
            answered = isinstance(exc, asyncio.IncompleteReadError) and exc.partial
            if not reused or answered:
                raise
            head = await self._send(data)
        assert self._reader is not None
        status = int(head[9:12])
        length, close = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise RuntimeError("chunked responses are not supported by the load generator")
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        content = await self._reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, content

    async def _send(self, data: bytes) -> bytes:
        if self._writer is None or self._reader is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._writer.write(data)
        await self._writer.drain()
        return await self._reader.readuntil(b"\r\n\r\n")

    async def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
        self._reader = self._writer = None


def run_load(
    base_url: str,
    make_request: Callable[[int], tuple[str, str, dict[str, str], bytes]],
    *,
    clients: int,
    seconds: float,
    warmup: float = 2.0,
    ok_status: int = 201,
    server_pid: int | None = None,
    upstream_pid: int | None = None,
) -> LoadResult:
    """`clients` concurrent loops, one keep-alive connection each, sending make_request(i) for `seconds` (after a
    warm-up); latencies of each, and the CPU time of the server (and of the upstream behind it, if given)."""
    url = httpx.URL(base_url)
    host, port = url.host, url.port or 80

    async def main() -> LoadResult:
        latencies: list[float] = []
        counter = 0
        errors = 0
        requests = 0
        connections = [HTTPConnection(host, port) for _ in range(clients)]

        async def worker(conn: HTTPConnection, stop_at: float, record: bool) -> None:
            nonlocal counter, errors, requests
            while time.perf_counter() < stop_at:
                counter += 1
                method, path, headers, body = make_request(counter)
                t0 = time.perf_counter()
                status, content = await conn.request(method, path, headers, body)
                dt_ms = (time.perf_counter() - t0) * 1000
                if record:
                    requests += 1
                    latencies.append(dt_ms)
                    if status != ok_status:
                        errors += 1
                        if errors <= 3:
                            print(f"  unexpected {status}: {content[:300]!r}", file=sys.stderr)

        try:
            warm_until = time.perf_counter() + warmup
            await asyncio.gather(*(worker(c, warm_until, False) for c in connections))
            cpu_before = tree_cpu_seconds(server_pid) if server_pid else 0.0
            upstream_before = tree_cpu_seconds(upstream_pid) if upstream_pid else 0.0
            started = time.perf_counter()
            await asyncio.gather(*(worker(c, started + seconds, True) for c in connections))
            elapsed = time.perf_counter() - started
            cpu = tree_cpu_seconds(server_pid) - cpu_before if server_pid else 0.0
            upstream = tree_cpu_seconds(upstream_pid) - upstream_before if upstream_pid else 0.0
        finally:
            for c in connections:
                await c.close()
        return LoadResult(requests, errors, elapsed, latencies, cpu, upstream)

    return asyncio.run(main())
