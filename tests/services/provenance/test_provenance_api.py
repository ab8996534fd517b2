"""The ledger's HTTP API: public checkpoint and proofs that verify, officer-only entries, owner-only bundles."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ledger.checkpoint import Verifier, open_checkpoint
from ledger.merkle import leaf_hash, root
from ledger.verify import verify_consistency, verify_inclusion
from services.kernel.database import unit_of_work
from services.kernel.outbox import record_event
from services.kernel.runtime import Runtime
from services.provenance import service
from services.provenance.checkpointer import Checkpointer
from services.provenance.cli import app as ledger_app
from tests.api.support import Api, assert_problem
from tests.services.provenance.conftest import settle

LEDGER = "/api/v1/ledger"


def unb64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def published(client: Any) -> tuple[Verifier, Any]:
    """The public key and the latest checkpoint, verified with it."""
    key = Verifier.from_vkey(client.get(f"{LEDGER}/public-key").text)
    response = client.get(f"{LEDGER}/checkpoint")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    cp = open_checkpoint(response.text.encode(), key, origin="kimthanh.smartgate/ledger")
    assert response.headers["x-ledger-tree-size"] == str(cp.size)
    return key, cp


@pytest.fixture
def filed(api: Api, trader: dict[str, str], runtime: Runtime, checkpointer: Checkpointer) -> dict[str, Any]:
    """A submitted declaration of organisation A, logged and covered by an anchored checkpoint."""
    created = api.file(trader, submit=True)
    settle(runtime, checkpointer)
    return created


def test_the_checkpoint_is_public_and_absent_until_the_first_one(
    client: Any, api: Api, trader: dict[str, str], runtime: Runtime, checkpointer: Checkpointer
) -> None:
    assert_problem(client.get(f"{LEDGER}/checkpoint"), 404)
    api.file(trader)
    settle(runtime, checkpointer)
    _, cp = published(client)
    assert cp.size >= 1
    assert client.get(f"{LEDGER}/checkpoint", params={"size": cp.size}).text == client.get(f"{LEDGER}/checkpoint").text
    assert_problem(client.get(f"{LEDGER}/checkpoint", params={"size": cp.size + 5}), 404)


def test_entries_need_an_officer_and_let_anyone_recompute_the_tree(
    client: Any, filed: dict[str, Any], trader: dict[str, str], officer: dict[str, str], keys: Any
) -> None:
    assert_problem(client.get(f"{LEDGER}/entries"), 401)
    assert_problem(client.get(f"{LEDGER}/entries", headers=trader), 403)
    assert_problem(client.get(f"{LEDGER}/entries", headers=keys.make("gate")), 403)
    _, cp = published(client)
    for headers in (officer, keys.make("admin")):
        page = client.get(f"{LEDGER}/entries", headers=headers, params={"start": 0, "end": cp.size}).json()
        assert [e["index"] for e in page["entries"]] == list(range(cp.size))
    hashes = []
    for entry in page["entries"]:
        leaf = unb64(entry["leaf"])
        assert leaf_hash(leaf) == unb64(entry["leaf_hash"])
        assert json.loads(leaf)["event_id"] == entry["event_id"]
        hashes.append(leaf_hash(leaf))
    assert root(unb64(e["leaf"]) for e in page["entries"]) == cp.root_hash
    assert page["next_start"] is None


def test_entry_ranges_are_capped_and_bad_ones_are_4xx(
    client: Any, filed: dict[str, Any], officer: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    get = client.get
    huge = get(f"{LEDGER}/entries", headers=officer, params={"start": 0, "end": 10**12}).json()
    size = huge["tree_size"]
    assert len(huge["entries"]) == size
    assert huge["end"] == size
    monkeypatch.setattr(service, "MAX_PAGE", 2)
    page = get(f"{LEDGER}/entries", headers=officer, params={"start": 0}).json()
    assert [e["index"] for e in page["entries"]] == [0, 1]
    assert page["next_start"] == 2
    beyond = get(f"{LEDGER}/entries", headers=officer, params={"start": size + 10}).json()
    assert beyond["entries"] == []
    assert beyond["next_start"] is None
    assert_problem(get(f"{LEDGER}/entries", headers=officer, params={"start": 3, "end": 1}), 422)
    assert_problem(get(f"{LEDGER}/entries", headers=officer, params={"start": -1}), 422)
    assert_problem(get(f"{LEDGER}/entries", headers=officer, params={"start": 2**70}), 422)


def test_inclusion_proofs_are_public_by_index_or_leaf_hash_and_verify(
    client: Any, filed: dict[str, Any], officer: dict[str, str]
) -> None:
    _, cp = published(client)
    entries = client.get(f"{LEDGER}/entries", headers=officer).json()["entries"]
    for entry in entries:
        by_index = client.get(f"{LEDGER}/proofs/inclusion", params={"index": entry["index"]}).json()
        assert by_index["tree_size"] == cp.size
        assert unb64(by_index["root_hash"]) == cp.root_hash
        proof = [unb64(p) for p in by_index["proof"]]
        verify_inclusion(unb64(entry["leaf_hash"]), entry["index"], cp.size, proof, cp.root_hash)
    last = entries[-1]
    for spelling in (unb64(last["leaf_hash"]).hex(), last["leaf_hash"]):
        by_hash = client.get(f"{LEDGER}/proofs/inclusion", params={"leaf_hash": spelling, "tree_size": cp.size})
        assert by_hash.status_code == 200, by_hash.text
        assert by_hash.json()["index"] == last["index"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"index": 0, "tree_size": 10**6}, 422),  # beyond the log
        ({"index": 10**6}, 422),  # not in the tree
        ({}, 422),  # neither index nor leaf hash
        ({"index": 0, "leaf_hash": "00" * 32}, 422),  # both
        ({"leaf_hash": "ab" * 32}, 404),  # no such entry
        ({"leaf_hash": "not a hash"}, 422),
        ({"index": -1}, 422),
        ({"index": 2**70}, 422),
    ],
)
def test_bad_inclusion_queries_are_4xx(client: Any, filed: dict[str, Any], params: dict[str, Any], status: int) -> None:
    assert_problem(client.get(f"{LEDGER}/proofs/inclusion", params=params), status)


def test_consistency_proofs_link_two_checkpoints(
    client: Any, filed: dict[str, Any], api: Api, trader: dict[str, str], runtime: Runtime, checkpointer: Checkpointer
) -> None:
    key, old = published(client)
    api.file(trader)
    settle(runtime, checkpointer)
    _, new = published(client)
    body = client.get(f"{LEDGER}/proofs/consistency", params={"first": old.size, "second": new.size}).json()
    assert unb64(body["first_root"]) == old.root_hash
    assert unb64(body["second_root"]) == new.root_hash
    verify_consistency(old.size, new.size, [unb64(p) for p in body["proof"]], old.root_hash, new.root_hash)
    default = client.get(f"{LEDGER}/proofs/consistency", params={"first": old.size}).json()
    assert default["second"] == new.size
    for params in ({"first": new.size, "second": old.size}, {"first": 1, "second": 10**6}, {"first": 0}):
        assert_problem(client.get(f"{LEDGER}/proofs/consistency", params=params), 422)


def test_bundles_go_to_the_owner_and_officers_only(
    client: Any,
    filed: dict[str, Any],
    trader: dict[str, str],
    trader_b: dict[str, str],
    officer: dict[str, str],
    keys: Any,
) -> None:
    url = f"{LEDGER}/subjects/{filed['id']}/bundle"
    assert_problem(client.get(url), 401)
    for headers in (trader, officer, keys.make("admin")):
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["subject"] == filed["id"]
    assert_problem(client.get(url, headers=trader_b), 404)  # another organisation's: not even its existence
    assert_problem(client.get(url, headers=keys.make("gate")), 403)
    # Subjects that are not a trader's declaration (rule sets, the gate) are for officers.
    assert_problem(client.get(f"{LEDGER}/subjects/rule-set:2026.1/bundle", headers=trader), 404)
    assert_problem(client.get(f"{LEDGER}/subjects/no-such-subject/bundle", headers=officer), 404)


def test_a_subject_logged_after_the_last_checkpoint_has_no_bundle_yet(
    client: Any, api: Api, trader: dict[str, str], runtime: Runtime
) -> None:
    created = api.file(trader)
    runtime.relay.drain()
    body = assert_problem(client.get(f"{LEDGER}/subjects/{created['id']}/bundle", headers=trader), 404)
    assert "retry" in body["detail"]


def test_a_bundle_fetched_over_http_verifies_offline_and_fails_when_a_byte_changes(
    client: Any, filed: dict[str, Any], trader: dict[str, str], tmp_path: Path
) -> None:
    key = client.get(f"{LEDGER}/public-key").text.strip()
    response = client.get(f"{LEDGER}/subjects/{filed['id']}/bundle", headers=trader)
    assert response.headers["content-disposition"].startswith("attachment")
    path = tmp_path / "bundle.json"
    path.write_bytes(response.content)
    runner = CliRunner()
    ok = runner.invoke(ledger_app, ["verify-bundle", str(path), "--key", key])
    assert ok.exit_code == 0, ok.output
    assert f"OK: subject '{filed['id']}'" in ok.stdout
    assert "anchor:" in ok.stdout
    assert "development chain" in ok.stdout
    bundle = json.loads(response.content)
    assert len(bundle["entries"]) >= 2
    assert len(bundle["anchors"]) == 1
    # Change one byte of an entry's payload (a status, say): the bundle no longer verifies.
    payload = bytearray(unb64(bundle["entries"][0]["payload"]))
    payload[payload.index(b'"status":"') + 10] ^= 0x01
    bundle["entries"][0]["payload"] = base64.b64encode(bytes(payload)).decode()
    path.write_text(json.dumps(bundle))
    bad = runner.invoke(ledger_app, ["verify-bundle", str(path)])
    assert bad.exit_code == 1
    assert "does NOT verify" in bad.stderr


def test_a_bundle_without_payloads_still_proves_the_history(
    client: Any, filed: dict[str, Any], trader: dict[str, str], tmp_path: Path
) -> None:
    response = client.get(f"{LEDGER}/subjects/{filed['id']}/bundle", headers=trader, params={"payloads": "false"})
    bundle = response.json()
    assert all(e["payload"] is None for e in bundle["entries"])
    path = tmp_path / "bundle.json"
    path.write_bytes(response.content)
    result = CliRunner().invoke(ledger_app, ["verify-bundle", str(path)])
    assert result.exit_code == 0, result.output


@pytest.mark.usefixtures("raw_events")  # the old payload forms are no longer in the event catalogue
def test_a_traders_bundle_withholds_payloads_recorded_in_the_pre_audit_forms(
    client: Any,
    api: Api,
    trader: dict[str, str],
    officer: dict[str, str],
    runtime: Runtime,
    checkpointer: Checkpointer,
    tmp_path: Path,
) -> None:
    """Entries written before selectivity became confidential (score, rule hits, officers' key ids) stay in the
    append-only ledger: a trader's bundle proves them without showing their payloads; customs sees them."""
    created = api.file(trader, submit=True)
    old_forms = [
        ("declaration.assessed", {"declaration_id": created["id"], "organisation_id": created["organisation_id"],
                                  "channel": "yellow", "score": 45, "rule_set_version": "2026.11.1",
                                  "rules": [{"rule": "new_trader", "weight": 25}]}),
        ("declaration.assigned", {"declaration_id": created["id"], "from": None, "to": "k0ff1cer",
                                  "actor": "supervisor:k5up"}),
        ("declaration.cleared", {"declaration_id": created["id"], "action": "clear", "actor": "officer:k0ff1cer"}),
    ]  # fmt: skip
    with unit_of_work(runtime.sessions) as session:
        for type_, payload in old_forms:
            record_event(session, type=type_, subject=created["id"], payload=payload)
    settle(runtime, checkpointer)
    mine = client.get(f"{LEDGER}/subjects/{created['id']}/bundle", headers=trader)
    assert mine.status_code == 200, mine.text
    shown = [json.loads(unb64(e["payload"])) for e in mine.json()["entries"] if e["payload"] is not None]
    withheld = [e for e in mine.json()["entries"] if e["payload"] is None]
    assert len(withheld) == 3
    assert shown  # today's events stay readable
    assert all(p["declaration_id"] == created["id"] for p in shown)
    for secret in (b"k0ff1cer", b"k5up", b"score", b"new_trader"):
        assert secret not in mine.content
    path = tmp_path / "bundle.json"
    path.write_bytes(mine.content)
    verified = CliRunner().invoke(ledger_app, ["verify-bundle", str(path)])
    assert verified.exit_code == 0, verified.output
    theirs = client.get(f"{LEDGER}/subjects/{created['id']}/bundle", headers=officer).json()
    assert all(e["payload"] is not None for e in theirs["entries"])
    assert len(theirs["entries"]) == len(mine.json()["entries"])
