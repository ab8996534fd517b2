"""C2SP signed-note checkpoints: known-answer vectors from Go's sumdb/note and the C2SP spec, and rejections."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from ledger.checkpoint import Checkpoint, Signer, Verifier, checkpoint_hash, key_id, open_checkpoint, parse_body
from ledger.verify import CheckpointError

GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = b"If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_SIG = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_SIG = "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM="


def test_go_known_answer_key_and_signature() -> None:
    signer = Signer.from_skey(GO_SKEY)
    assert signer.verifier.vkey == GO_VKEY
    assert signer.skey() == GO_SKEY
    assert base64.b64encode(signer.verifier.key_id + signer.sign(GO_TEXT)).decode() == GO_SIG


def test_spec_example_signature_verifies() -> None:
    v = Verifier.from_vkey(SPEC_VKEY)
    raw = base64.b64decode(SPEC_SIG)
    assert raw[:4] == v.key_id == key_id("example.com/foo", v.public_key)
    assert v.verify(b"This is an example message.\n", raw[4:])
    assert not v.verify(b"This is an example message!\n", raw[4:])


def test_checkpoint_note_layout(signer: Signer) -> None:
    root = bytes(range(32))
    note = Checkpoint("smartgate.test/ledger", 42, root).sign(signer)
    lines = note.decode().split("\n")
    assert lines[:4] == ["smartgate.test/ledger", "42", base64.b64encode(root).decode(), ""]
    assert lines[4].startswith("\u2014 smartgate-test ")
    assert lines[5] == ""
    sig = base64.b64decode(lines[4].split(" ")[2])
    assert sig[:4] == signer.verifier.key_id
    assert len(sig) == 68
    cp = open_checkpoint(note, signer.verifier, origin="smartgate.test/ledger")
    assert (cp.size, cp.root_hash) == (42, root)
    assert checkpoint_hash(note) == __import__("hashlib").sha256(note).digest()


def test_foreign_cosignature_is_ignored(signer: Signer) -> None:
    note = Checkpoint("o", 1, bytes(32)).sign(signer)
    witness = Signer.generate("witness.example")
    body = note[: note.index(b"\n\n") + 1]
    extra = base64.b64encode(witness.verifier.key_id + witness.sign(body)).decode()
    cosigned = note + f"\u2014 witness.example {extra}\n".encode()
    assert open_checkpoint(cosigned, signer.verifier).size == 1


@pytest.mark.parametrize(
    "mutate",
    [
        lambda n: n.replace(b"\n7\n", b"\n8\n"),
        lambda n: n.replace(b"origin", b"0rigin"),
        lambda n: n[:-3] + (b"A" if n[-3:-2] != b"A" else b"B") + n[-2:],
        lambda n: n.replace(b"\n\n", b"\n"),
        lambda n: n.rstrip(b"\n"),
    ],
)
def test_edited_note_is_rejected(signer: Signer, mutate: Callable[[bytes], bytes]) -> None:
    note = Checkpoint("origin", 7, bytes(range(32))).sign(signer)
    with pytest.raises(CheckpointError):
        open_checkpoint(mutate(note), signer.verifier)


def test_other_key_or_origin_is_rejected(signer: Signer) -> None:
    note = Checkpoint("origin", 7, bytes(32)).sign(Signer.generate("smartgate-test"))
    with pytest.raises(CheckpointError, match="not signed by the expected key") as err:
        open_checkpoint(note, signer.verifier)
    assert err.value.index == 7
    with pytest.raises(CheckpointError, match="origin"):
        open_checkpoint(Checkpoint("origin", 7, bytes(32)).sign(signer), signer.verifier, origin="other")


@pytest.mark.parametrize(
    "body",
    [b"o\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", b"o\n1\nAAAA\n", b"o\n-1\nx\n", b"\n1\nAA==\n"],
)
def test_malformed_bodies(body: bytes) -> None:
    with pytest.raises(CheckpointError):
        parse_body(body)
