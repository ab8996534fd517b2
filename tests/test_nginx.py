"""deploy/nginx.conf.template, the reverse proxy the deployment docs recommend in front of the services: it routes the
same path prefixes as the gateway, renders, `nginx -t` accepts it, and a running nginx answers what it answers itself
(liveness, refused paths, unknown API paths, an unreachable service) as problem+json. (That it routes requests and
carries X-Request-ID through to a real declarations process is checked by benchmarks/gateway.py before it measures.)
Needs nginx (`NGINX=1 scripts/system-deps.sh`, which `make test` runs): skipped without it, failed under CI=true."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.gateway import PREFIXES
from benchmarks import _harness, _nginx
from tests.processes import require


def test_the_template_routes_the_gateways_prefixes() -> None:
    routed = _nginx.template_prefixes(_nginx.TEMPLATE.read_text())
    assert routed == {name: set(prefixes) for name, prefixes in PREFIXES.items()}


def test_render_needs_every_value_and_leaves_nginx_variables() -> None:
    values = dict.fromkeys(_nginx.VARIABLES, "127.0.0.1:1")
    text = _nginx.render(values)
    assert "${SMARTGATE_" not in text
    assert "$request_id" in text
    assert "$http_x_request_id" in text
    with pytest.raises(ValueError, match="SMARTGATE_WEBHOOKS"):
        _nginx.render({k: v for k, v in values.items() if k != "SMARTGATE_WEBHOOKS"})


def _binary() -> str:
    binary = _nginx.nginx_binary()
    require(None if binary else "nginx is not installed (NGINX=1 scripts/system-deps.sh)")
    assert binary is not None
    return binary


def test_nginx_accepts_the_rendered_template(tmp_path: Path) -> None:
    values = {name: f"127.0.0.1:{_harness.free_port()}" for name in _nginx.VARIABLES}
    checked = _nginx.check(_binary(), _nginx.write_config(tmp_path, values))
    assert checked.returncode == 0, checked.stderr


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[str]:
    """nginx on loopback with the template, every upstream a closed port; its base URL."""
    binary, port, closed = _binary(), _harness.free_port(), _harness.free_port()
    values = dict.fromkeys(_nginx.VARIABLES, f"127.0.0.1:{closed}") | {"SMARTGATE_LISTEN": f"127.0.0.1:{port}"}
    proc = subprocess.Popen(_nginx.command(binary, _nginx.write_config(tmp_path, values)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, (tmp_path / "logs/error.log").read_text()
                assert time.monotonic() < deadline, "nginx did not answer within 10 s"
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_nginx_answers_liveness_itself(nginx: str) -> None:
    got = httpx.get(f"{nginx}/healthz")
    assert (got.status_code, got.json()) == (200, {"status": "ok"})
    assert got.headers["content-type"] == "application/json"


ROUTED = ["/api/v1/declarations", "/api/v1/declarations/x", "/api/v1/exchange-rates/x", "/api/v1/declarations/v1.2",
          "/api/v1/declarations?cursor=a%2Fb..%5c", "/api/v1/ledger/checkpoints", "/api/v1/gate/events",
          "/api/v1/webhooks", "/console"]  # fmt: skip


@pytest.mark.parametrize("path", ROUTED)
def test_an_unreachable_service_is_a_503_problem_with_retry_after(nginx: str, path: str) -> None:
    got = httpx.post(f"{nginx}{path}", content=b"{}", headers={"x-request-id": "r-1"})
    assert got.status_code == 503
    assert got.headers["content-type"] == "application/problem+json"
    assert got.headers["retry-after"] == "5"
    assert got.json()["title"] == "Service unavailable"


@pytest.mark.parametrize("path", ["/api/v1/declarationsx", "/api/v2/declarations", "/api/v1/unknown/x"])
def test_a_path_no_service_serves_is_a_404_problem(nginx: str, path: str) -> None:
    got = httpx.get(f"{nginx}{path}")
    assert (got.status_code, got.headers["content-type"]) == (404, "application/problem+json")
    assert got.json()["status"] == 404


@pytest.mark.parametrize("raw", [b"/api/v1/webhooks/../declarations", b"/api/v1/declarations/%2e%2e/x",
                                 b"/api/v1/declarations/a%2Fb", b"/api/v1/declarations/a%5cb",
                                 b"/api/v1/declarations/./x"])  # fmt: skip
def test_dot_segments_and_encoded_slashes_are_refused(nginx: str, raw: bytes) -> None:
    # httpx would remove the dot-segments before sending: send the bytes as any client may.
    url = httpx.URL(nginx)
    with socket.create_connection((url.host, url.port or 80), timeout=10) as sock:
        sock.sendall(b"GET " + raw + b" HTTP/1.1\r\nHost: smartgate\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"\r\ncontent-type: application/problem+json\r\n" in head.lower()
    assert json.loads(body)["detail"] == "the path has dot-segments or an encoded slash"
