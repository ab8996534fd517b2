"""The verifiers pass every transparency-dev/merkle inclusion and consistency vector (accept or reject as told)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ledger.verify import VerificationError, verify_consistency, verify_inclusion

HERE = Path(__file__).resolve().parent
VECTORS = HERE / "vectors"


def _cases(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


def _b(value: str) -> bytes:
    return base64.b64decode(value)


def test_vector_copy_is_complete() -> None:
    assert len(_cases("inclusion")) >= 90
    assert len(_cases("consistency")) >= 90
    # Every case was copied (tests/ledger/vectors/NOTICE.md): as many accepting as rejecting cases of each kind.
    for kind in ("inclusion", "consistency"):
        wants = [json.loads(p.read_text())["wantErr"] for p in _cases(kind)]
        assert any(wants), kind
        assert not all(wants), kind


@pytest.mark.parametrize("case", _cases("inclusion"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_inclusion_vector(case: Path) -> None:
    v = json.loads(case.read_text())
    args = (_b(v["leafHash"]), v["leafIdx"], v["treeSize"], [_b(p) for p in v["proof"] or []], _b(v["root"]))
    if v["wantErr"]:
        with pytest.raises(VerificationError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("case", _cases("consistency"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_consistency_vector(case: Path) -> None:
    v = json.loads(case.read_text())
    args = (v["size1"], v["size2"], [_b(p) for p in v["proof"] or []], _b(v["root1"]), _b(v["root2"]))
    if v["wantErr"]:
        with pytest.raises(VerificationError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)
