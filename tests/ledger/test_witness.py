"""Witness cosignatures (C2SP tlog-cosignature) and the witness (C2SP tlog-witness): vectors, refusals, HTTP."""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient
from typer.testing import CliRunner

from ledger.checkpoint import Checkpoint, Signer, open_checkpoint
from ledger.merkle import MemoryTree
from ledger.verify import CheckpointError
from ledger.witness import (
    SIZE_CONTENT_TYPE,
    CosignatureVerifier,
    Cosigner,
    Witness,
    WitnessRequestError,
    WitnessState,
    add_cosignatures,
    cosignatures,
    cosigned_message,
    cosigner_key_id,
    decode_add_checkpoint,
    encode_add_checkpoint,
    require_quorum,
    split_note,
)
from ledger.witness_client import WitnessPool, parse_witnesses
from ledger.witness_server import create_witness_app

ORIGIN = "smartgate.test/ledger"
# The example of C2SP tlog-cosignature v1.0.0 (the witness's public key is not published with it).
SPEC_BODY = b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_COSIG = (
    "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZ"
    "qhf5nNo0xUe+mbIUBkBIfZ+qnA=="
)
SPEC_LOG_SIG = (
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+"
    "zyWE+xeMcTOAYQ8="
)
WITNESS_SEED = hashlib.sha256(b"smartgate test witness").digest()


def _cosigner(name: str = "witness.test/w1", seed: bytes = WITNESS_SEED) -> Cosigner:
    return Cosigner.from_seed(name, seed)


# --- format ---


def test_spec_message_is_byte_exact() -> None:
    assert cosigned_message(SPEC_BODY, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n"
        b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
    with pytest.raises(ValueError, match="out of range"):
        cosigned_message(SPEC_BODY, 2**63)


def test_spec_example_cosignature_layout() -> None:
    """The spec's cosignature line: 4-byte key id, big-endian time 1679315147 (its message example), 64 bytes."""
    raw = base64.b64decode(SPEC_COSIG.split(" ")[2])
    assert len(raw) == 4 + 8 + 64
    assert struct.unpack(">Q", raw[4:12]) == (1679315147,)
    # An arbitrary key with that name does not verify it (key id and signature both differ), and never raises.
    other = _cosigner("witness.example.com/w1").verifier
    assert other.key_id != raw[:4]
    assert other.verify_line(SPEC_BODY, SPEC_COSIG) is None
    # The log's own line in the example is ignored by a cosignature verifier: it is 68 bytes, not 76.
    assert other.verify_line(SPEC_BODY, SPEC_LOG_SIG) is None


def test_key_id_uses_algorithm_byte_4_and_vkey_round_trips() -> None:
    c = _cosigner()
    pub = c.verifier.public_key
    assert c.verifier.key_id == hashlib.sha256(b"witness.test/w1\n\x04" + pub).digest()[:4]
    assert cosigner_key_id("witness.test/w1", pub) != hashlib.sha256(b"witness.test/w1\n\x01" + pub).digest()[:4]
    vkey = c.verifier.vkey
    encoded = base64.b64encode(b"\x04" + pub).decode()
    assert vkey == f"witness.test/w1+{c.verifier.key_id.hex()}+{encoded}"
    assert CosignatureVerifier.from_vkey(vkey) == c.verifier
    assert Cosigner.from_skey(c.skey()).verifier == c.verifier
    # A log (type 0x01) key is not a witness key, and a wrong key id is refused.
    log_vkey = Signer.from_seed("witness.test/w1", WITNESS_SEED).verifier.vkey
    with pytest.raises(CheckpointError, match="0x04"):
        CosignatureVerifier.from_vkey(log_vkey)
    name, kid, enc = vkey.split("+", 2)
    with pytest.raises(CheckpointError, match="key id"):
        CosignatureVerifier.from_vkey(f"{name}+00000000+{enc}")


def test_cosignature_signs_the_spec_message(signer: Signer) -> None:
    """Independent check: the line's signature is Ed25519 over the spec's message, by the raw key."""
    c = _cosigner()
    note = Checkpoint(ORIGIN, 7, bytes(32)).sign(signer)
    body, _ = split_note(note)
    line = c.cosign(body, 1700000000)
    assert line.startswith("\u2014 witness.test/w1 ")
    assert line.endswith("\n")
    raw = base64.b64decode(line.split(" ")[2])
    assert raw[:4] == c.verifier.key_id
    assert raw[4:12] == (1700000000).to_bytes(8, "big")
    expected = Ed25519PrivateKey.from_private_bytes(WITNESS_SEED).sign(b"cosignature/v1\ntime 1700000000\n" + body)
    assert raw[12:] == expected
    assert c.verifier.verify_line(body, line.rstrip("\n")) == 1700000000
    assert c.verifier.verify_line(body.replace(b"7", b"8"), line.rstrip("\n")) is None


def test_cosigned_note_still_opens_with_the_log_key_and_counts_a_quorum(signer: Signer) -> None:
    w1, w2, w3 = (_cosigner(f"w{i}.test", hashlib.sha256(bytes([i])).digest()) for i in (1, 2, 3))
    note = Checkpoint(ORIGIN, 3, bytes(range(32))).sign(signer)
    body, _ = split_note(note)
    cosigned = add_cosignatures(note, [w1.cosign(body, 1), w2.cosign(body, 2), w1.cosign(body, 1)])
    assert cosigned.decode().count("\n\u2014 ") == 3  # log + two witnesses; the duplicate is skipped
    assert open_checkpoint(cosigned, signer.verifier).size == 3
    got = cosignatures(cosigned, [w1.verifier, w2.verifier, w3.verifier])
    assert [(c.witness.name, c.timestamp) for c in got] == [("w1.test", 1), ("w2.test", 2)]
    assert len(require_quorum(cosigned, [w1.verifier, w2.verifier, w3.verifier], 2)) == 2
    with pytest.raises(CheckpointError, match="not witnessed"):
        require_quorum(cosigned, [w1.verifier, w2.verifier, w3.verifier], 3)
    # The same witness listed twice counts once.
    with pytest.raises(CheckpointError, match="quorum is larger"):
        require_quorum(cosigned, [w1.verifier, w1.verifier], 2)
    # A cosignature moved onto another checkpoint does not count.
    other = Checkpoint(ORIGIN, 4, bytes(range(32))).sign(signer)
    moved = add_cosignatures(other, [w1.cosign(body, 1)])
    assert cosignatures(moved, [w1.verifier]) == []


def test_request_encoding_round_trips(signer: Signer) -> None:
    note = Checkpoint(ORIGIN, 5, bytes(32)).sign(signer)
    proof = [bytes([i]) * 32 for i in range(3)]
    req = encode_add_checkpoint(4, proof, note)
    assert req.startswith(b"old 4\n" + base64.b64encode(proof[0]) + b"\n")
    assert decode_add_checkpoint(req) == (4, proof, note)
    assert decode_add_checkpoint(encode_add_checkpoint(0, [], note)) == (0, [], note)
    for bad in (b"old 04\n\n" + note, b"new 4\n\n" + note, b"old 4\nnotbase64!\n\n" + note, b"old 4\n" + note):
        with pytest.raises(WitnessRequestError) as info:
            decode_add_checkpoint(bad)
        assert info.value.status == 400
    with pytest.raises(WitnessRequestError, match="63"):
        decode_add_checkpoint(encode_add_checkpoint(4, [bytes(32)] * 64, note))


# --- the witness ---


class Log:
    """A test log: a memory tree, its key, and what it last got cosigned."""

    def __init__(self, signer: Signer, origin: str = ORIGIN) -> None:
        self.signer, self.origin, self.tree = signer, origin, MemoryTree()

    def grow(self, n: int, tag: bytes = b"") -> None:
        for _ in range(n):
            self.tree.append(tag + str(self.tree.size).encode())

    def note(self, size: int | None = None) -> bytes:
        size = self.tree.size if size is None else size
        return Checkpoint(self.origin, size, self.tree.root(size)).sign(self.signer)

    def request(self, old: int, size: int | None = None) -> bytes:
        size = self.tree.size if size is None else size
        proof = self.tree.consistency_proof(old, size) if 0 < old < size else []
        return encode_add_checkpoint(old, proof, self.note(size))


@pytest.fixture
def witness(tmp_path: Path, signer: Signer) -> Witness:
    return Witness(_cosigner(), {ORIGIN: [signer.verifier]}, WitnessState(tmp_path / "w.sqlite"), clock=lambda: 1234.0)


def _status(witness: Witness, request: bytes) -> tuple[int, int | None]:
    with pytest.raises(WitnessRequestError) as info:
        witness.add_checkpoint(request)
    return info.value.status, info.value.size


def test_witness_cosigns_a_consistent_sequence(witness: Witness, signer: Signer) -> None:
    log = Log(signer)
    last = 0
    for grow in (1, 1, 5, 9, 16, 1):
        log.grow(grow)
        line = witness.add_checkpoint(log.request(last))
        cosigned = add_cosignatures(log.note(), [line])
        assert [c.timestamp for c in cosignatures(cosigned, [witness.cosigner.verifier])] == [1234]
        last = log.tree.size
    state = witness.state.get(ORIGIN)
    assert state is not None
    assert (state.size, state.root_hash) == (33, log.tree.root())
    # Resubmitting the same checkpoint (same size, same root, empty proof) is cosigned again.
    assert witness.add_checkpoint(log.request(33))


def test_witness_refuses_rollback_fork_bad_proof_and_wrong_key(witness: Witness, signer: Signer) -> None:
    log = Log(signer)
    log.grow(10)
    witness.add_checkpoint(log.request(0))
    # Rollback: a smaller checkpoint, claiming the witness saw nothing (or the smaller size): 409 with its size.
    assert _status(witness, log.request(0, 6)) == (409, 10)
    assert _status(witness, log.request(6, 6)) == (409, 10)
    # Old size above the new size: 400.
    assert _status(witness, log.request(10, 6))[0] == 400
    # Fork of the same size: another history of 10 entries.
    fork = Log(signer)
    fork.grow(10, b"x")
    assert _status(witness, fork.request(10)) == (409, None)
    # A fork that grew: its proof from 10 does not lead to the witnessed root: 422.
    fork.grow(5, b"x")
    assert _status(witness, fork.request(10))[0] == 422
    # Bad proof on an honest extension: 422.
    log.grow(7)
    old, proof, note = decode_add_checkpoint(log.request(10))
    proof[0] = bytes(32)
    assert _status(witness, encode_add_checkpoint(old, proof, note))[0] == 422
    # Signed by another key: 403; unknown origin: 404.
    assert _status(witness, Log(Signer.generate("smartgate-test")).request(0))[0] == 403
    stranger = Log(signer, origin="elsewhere.test/log")
    stranger.grow(2)
    assert _status(witness, stranger.request(0))[0] == 404
    # None of this moved the witness: it is still at 10, and the honest extension is cosigned.
    state = witness.state.get(ORIGIN)
    assert state is not None
    assert state.size == 10
    assert witness.add_checkpoint(log.request(10))


def test_witness_state_survives_a_restart(tmp_path: Path, signer: Signer) -> None:
    log = Log(signer)
    log.grow(4)
    w = Witness(_cosigner(), {ORIGIN: [signer.verifier]}, WitnessState(tmp_path / "s.sqlite"))
    w.add_checkpoint(log.request(0))
    w.state.close()
    again = Witness(_cosigner(), {ORIGIN: [signer.verifier]}, WitnessState(tmp_path / "s.sqlite"))
    assert _status(again, log.request(0, 2)) == (409, 4)


def test_http_interface(witness: Witness, signer: Signer) -> None:
    log = Log(signer)
    log.grow(3)
    client = TestClient(create_witness_app(witness))
    r = client.post("/add-checkpoint", content=log.request(0))
    assert r.status_code == 200
    assert r.text.startswith("\u2014 witness.test/w1 ")
    assert cosignatures(add_cosignatures(log.note(), [r.text]), [witness.cosigner.verifier])
    r = client.post("/add-checkpoint", content=log.request(0, 2))
    assert (r.status_code, r.headers["content-type"], r.text) == (409, SIZE_CONTENT_TYPE, "3\n")
    fork = Log(signer)
    fork.grow(3, b"x")
    r = client.post("/add-checkpoint", content=fork.request(3))
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 409
    assert client.post("/add-checkpoint", content=b"garbage").status_code == 400
    assert client.get("/public-key").text == witness.cosigner.verifier.vkey + "\n"


# --- the served witness (`smartgate witness serve`, a real process on 127.0.0.1) ---


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_keygen_and_serve_on_loopback(tmp_path: Path, signer: Signer) -> None:
    from api.cli import app as cli_app

    runner = CliRunner()
    key_file = tmp_path / "witness.key"
    result = runner.invoke(cli_app, ["witness", "keygen", "witness.test/served", "--out", str(key_file)])
    assert result.exit_code == 0, result.output
    vkey = CosignatureVerifier.from_vkey(result.output.strip().splitlines()[-1])
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert Cosigner.from_skey(key_file.read_text()).verifier == vkey
    assert runner.invoke(cli_app, ["witness", "keygen", "bad name"]).exit_code == 1

    port = _free_port()
    args = ["--key", str(key_file), "--log", f"{ORIGIN}={signer.verifier.vkey}", "--state", str(tmp_path / "s.db")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "witness", "serve", *args, "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/public-key", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "witness did not start"
                time.sleep(0.1)
        log = Log(signer)
        log.grow(5)
        with httpx.Client(base_url=url, timeout=5) as client:
            r = client.post("/add-checkpoint", content=log.request(0))
            assert r.status_code == 200
            assert require_quorum(add_cosignatures(log.note(), [r.text]), [vkey], 1)[0].witness == vkey
            log.grow(3)
            assert client.post("/add-checkpoint", content=log.request(5)).status_code == 200
            r = client.post("/add-checkpoint", content=log.request(5))
            assert (r.status_code, r.text) == (409, "8\n")
            bad = Log(Signer.generate("smartgate-test"))
            bad.grow(9)
            assert client.post("/add-checkpoint", content=bad.request(8)).status_code == 403
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- the log's pool of witnesses: one down, back later, catches up with one request ---


class ServedWitness:
    """A witness served by uvicorn in a thread on 127.0.0.1 (started and stopped by the test)."""

    def __init__(self, witness: Witness, port: int) -> None:
        import uvicorn

        self.port = port
        config = uvicorn.Config(create_witness_app(witness), host="127.0.0.1", port=port, log_config=None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServedWitness:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "witness did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def test_pool_goes_on_without_a_down_witness_and_it_catches_up(tmp_path: Path, signer: Signer) -> None:
    witnesses = [
        Witness(
            _cosigner(f"w{i}.test", hashlib.sha256(bytes([i])).digest()),
            {ORIGIN: [signer.verifier]},
            WitnessState(tmp_path / f"w{i}.sqlite"),
        )
        for i in range(2)
    ]
    ports = [_free_port(), _free_port()]
    spec = ",".join(f"http://127.0.0.1:{p}|{w.cosigner.verifier.vkey}" for p, w in zip(ports, witnesses, strict=True))
    endpoints = parse_witnesses(spec)
    assert [e.key for e in endpoints] == [w.cosigner.verifier for w in witnesses]
    with pytest.raises(ValueError, match="twice"):
        parse_witnesses(f"{spec},{spec.split(',')[0]}")
    with pytest.raises(ValueError, match="quorum"):
        WitnessPool(endpoints, 3)
    pool = WitnessPool(endpoints, 2, timeout=2)
    log = Log(signer)
    try:
        with ServedWitness(witnesses[0], ports[0]):
            for grow in (3, 4):
                log.grow(grow)
                result = pool.cosign(log.note(), log.tree.size, log.tree.consistency_proof)
                assert len(result.lines) == 1
                assert not result.witnessed
                assert list(result.unavailable) == ["w1.test"]
                assert result.refused == {}
            with ServedWitness(witnesses[1], ports[1]):
                log.grow(5)
                result = pool.cosign(log.note(), log.tree.size, log.tree.consistency_proof)
                assert result.witnessed, result
                cosigned = add_cosignatures(log.note(), result.lines)
                assert len(require_quorum(cosigned, [e.key for e in endpoints], 2)) == 2
                # A rolled-back checkpoint is refused by both, and reported as such.
                rolled = pool.cosign(log.note(4), 4, log.tree.consistency_proof)
                assert sorted(rolled.refused) == ["w0.test", "w1.test"]
                assert not rolled.witnessed
    finally:
        pool.close()
