"""Key rotation (issue 13 §3): a new signing key is recorded and signs from the next checkpoint on, old and new
checkpoints and bundles verify under the key valid at their size, a retired key never signs again, and a checkpoint
signed by a key outside its validity is refused. `ledger verify --witness --quorum` holds the latest checkpoint to
the witnesses. SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from ledger import reader, storage
from ledger.bundle import dumps, verify_bundle
from ledger.checkpoint import Checkpoint, Signer, open_checkpoint
from ledger.fsck import fsck
from ledger.keyring import KeyHistory, parse_key_list
from ledger.verify import AnchorError, BundleError, CheckpointError, KeyValidityError
from ledger.witness import Cosigner, Witness, WitnessState, encode_add_checkpoint
from services.kernel.database import table_of, unit_of_work, utcnow
from services.kernel.runtime import Runtime
from services.kernel.settings import KernelSettings
from services.provenance import service
from services.provenance.checkpointer import Checkpointer, SigningKeyRetired
from services.provenance.cli import app as ledger_app
from services.provenance.models import WitnessCosignature
from services.provenance.service import Provenance
from services.provenance.settings import provenance_settings
from tests.api.support import Api
from tests.services.provenance.conftest import settle, tamper

LEDGER = "/api/v1/ledger"
ORIGIN = "kimthanh.smartgate/ledger"
NEW = Signer.from_seed(ORIGIN, hashlib.sha256(b"rotated key").digest())


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: KernelSettings) -> None:
    """The CLI reads the same settings as the app under test (its development key included)."""
    for name, value in (("ENVIRONMENT", settings.environment), ("DATABASE_URL", settings.database_url),
                        ("VAR_DIR", str(settings.var_dir)), ("SECRET_KEY", settings.secret_key)):  # fmt: skip
        monkeypatch.setenv(f"SMARTGATE_{name}", value)


def rotated(prov: Provenance, runtime: Runtime, *, cosign: bool) -> tuple[Provenance, Checkpointer]:
    """The provenance service restarted with NEW as its signing key (the old one as the previous key if `cosign`)."""
    update = {"ledger_signing_key": SecretStr(NEW.skey())}
    if cosign:
        update["ledger_previous_signing_key"] = SecretStr(prov.signer.skey())
    settings = provenance_settings(runtime.settings).model_copy(update=update)
    new = Provenance(settings, engine=runtime.engine, sessions=runtime.sessions)
    return new, Checkpointer(new)


def history(runtime: Runtime) -> KeyHistory:
    with runtime.engine.connect() as conn:
        return KeyHistory.from_rows(storage.key_rows(conn))


def fetch_bundle(client: TestClient, officer: dict[str, str], subject: str) -> bytes:
    resp = client.get(f"{LEDGER}/subjects/{subject}/bundle", headers=officer)
    assert resp.status_code == 200, resp.text
    return resp.content


@pytest.mark.parametrize("cosign", [True, False], ids=["cosigned", "plain"])
def test_a_rotated_key_signs_on_and_every_checkpoint_and_bundle_still_verifies(
    cosign: bool,
    api: Api,
    trader: dict[str, str],
    officer: dict[str, str],
    client: TestClient,
    runtime: Runtime,
    prov: Provenance,
    checkpointer: Checkpointer,
    cli_env: None,
    tmp_path: Path,
) -> None:
    old = prov.verifier
    first = api.file(trader, submit=True)["id"]
    settle(runtime, checkpointer)
    with runtime.engine.connect() as conn:
        before = storage.log_size(conn)
    assert [(k.valid_from_size, k.verifier) for k in history(runtime).keys] == [(0, old)]
    old_bundle = fetch_bundle(client, officer, first)

    # The service restarts with a new key: it records it, and checkpointing goes on (it used to stop for good).
    new_prov, new_checkpointer = rotated(prov, runtime, cosign=cosign)
    idle = new_checkpointer.checkpoint_now()
    assert idle.signed is None  # the log did not grow: nothing to sign, but the key is recorded
    keys = history(runtime)
    assert [(k.valid_from_size, k.verifier) for k in keys.keys] == [(0, old), (before + 1, NEW.verifier)]
    assert keys.keys[0].valid_until_size == before + 1
    second = api.file(trader, submit=True)["id"]
    runtime.relay.drain()
    outcome = new_checkpointer.checkpoint_now()
    assert outcome.signed is not None
    assert outcome.anchor_error is None
    size, note = outcome.signed
    assert open_checkpoint(note, NEW.verifier, origin=ORIGIN).size == size
    if cosign:
        # The rotation's first checkpoint carries both signatures: whoever trusts the old key sees it too.
        assert open_checkpoint(note, old, origin=ORIGIN).size == size
    else:
        with pytest.raises(CheckpointError, match="not signed by the expected key"):
            open_checkpoint(note, old, origin=ORIGIN)
    api.file(trader)
    runtime.relay.drain()
    later = new_checkpointer.checkpoint_now().signed
    assert later is not None
    assert later[1].count("\u2014 ".encode()) == 1

    # The retired key never signs again: the old process is refused, loudly, and nothing is stored.
    api.file(trader)
    runtime.relay.drain()
    with pytest.raises(SigningKeyRetired, match="retired at checkpoint size"):
        checkpointer.checkpoint_now()
    with runtime.engine.connect() as conn:
        assert storage.get_checkpoint(conn) == later

    # The public key history, and bundles from before and after the rotation verified with it offline.
    listing = client.get(f"{LEDGER}/public-keys")
    assert listing.status_code == 200
    doc = listing.json()
    assert [(k["vkey"], k["valid_from_size"], k["valid_until_size"], k["current"]) for k in doc["keys"]] == [
        (old.vkey, 0, before + 1, False),
        (NEW.verifier.vkey, before + 1, None, True),
    ]
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(listing.text)
    assert (
        parse_key_list(listing.text).keys
        == KeyHistory.from_rows([(0, old.vkey, None), (before + 1, NEW.verifier.vkey, None)]).keys
    )
    new_bundle = dumps(service.build_bundle(new_prov, second, include_payloads=True))
    assert json.loads(new_bundle)["public_key"] == NEW.verifier.vkey
    for bundle in (old_bundle, new_bundle):
        report = verify_bundle(bundle, keys=parse_key_list(listing.text))
        assert report.key_pinned
    bundle_files = []
    for name, data in (("old", old_bundle), ("new", new_bundle)):
        path = tmp_path / f"{name}.json"
        path.write_bytes(data)
        bundle_files.append(path)
    runner = CliRunner()
    for path in bundle_files:
        ok = runner.invoke(ledger_app, ["verify-bundle", str(path), "--keys", str(keys_file)])
        assert ok.exit_code == 0, ok.output
        assert "pinned with --keys" in ok.stdout
        both = runner.invoke(ledger_app, ["verify-bundle", str(path), "--key", old.vkey, "--key", NEW.verifier.vkey])
        assert both.exit_code == 0, both.output
    only_new = runner.invoke(ledger_app, ["verify-bundle", str(bundle_files[0]), "--key", NEW.verifier.vkey])
    assert only_new.exit_code == 1
    assert only_new.stderr.count("\n") == 1
    assert only_new.stderr.startswith("error: bundle does NOT verify: bundle is signed by another key")

    # The whole log verifies across the rotation, under the history the log recorded.
    result = runner.invoke(ledger_app, ["verify"])
    assert result.exit_code == 0, result.output
    assert "; signed by 2 keys: " in result.stdout
    assert f"(sizes 0..{before})" in result.stdout
    assert f"(sizes {before + 1}..)" in result.stdout
    pinned_old = runner.invoke(ledger_app, ["verify", "--key", old.vkey])
    assert pinned_old.exit_code == 1
    assert "checkpoint is not signed by the expected key" in pinned_old.stderr
    assert runner.invoke(ledger_app, ["verify", "--keys", str(keys_file)]).exit_code == 0


def test_a_checkpoint_signed_by_a_key_outside_its_validity_is_refused(
    api: Api,
    trader: dict[str, str],
    runtime: Runtime,
    prov: Provenance,
    checkpointer: Checkpointer,
    database_url: str,
    cli_env: None,
) -> None:
    old_signer = prov.signer
    api.file(trader, submit=True)
    settle(runtime, checkpointer)
    with runtime.engine.connect() as conn:
        before = storage.log_size(conn)
    _new_prov, new_checkpointer = rotated(prov, runtime, cosign=False)
    api.file(trader, submit=True)
    runtime.relay.drain()
    signed = new_checkpointer.checkpoint_now().signed
    assert signed is not None
    size, note = signed
    # Whoever still holds the retired key re-signs the new checkpoint with it (and drops the new key's line).
    forged = Checkpoint(ORIGIN, size, open_checkpoint(note, NEW.verifier).root_hash).sign(old_signer)
    tamper(database_url, ("UPDATE ledger_checkpoints SET note = :n WHERE size = :s", {"n": forged, "s": size}))

    report = fsck(runtime.engine, history(runtime), origin=ORIGIN)
    # (Its anchor names the note as the log signed it, so that fails too.)
    assert [type(p) for p in report.problems] == [KeyValidityError, AnchorError]
    problem = report.problems[0]
    assert problem.index == size
    assert str(problem).startswith(
        f"checkpoint {size} is signed by key {old_signer.name} valid only for sizes 0..{before}, not by the key "
        f"valid at size {size}"
    )
    assert problem.expected == NEW.verifier.vkey
    assert problem.found == old_signer.verifier.vkey
    # The checkpointer will not extend it, and `ledger verify` names it in one line.
    api.file(trader)
    runtime.relay.drain()
    with pytest.raises(Exception, match="no longer extends checkpoint"):
        new_checkpointer.checkpoint_now()
    result = CliRunner().invoke(ledger_app, ["verify"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert f"first bad index {size}: [key-validity] checkpoint {size} is signed by key" in result.stderr
    assert "not by the key valid at size" in result.stderr


def test_a_log_without_a_recorded_key_records_the_one_that_signed_it(
    api: Api, trader: dict[str, str], runtime: Runtime, prov: Provenance, checkpointer: Checkpointer, database_url: str
) -> None:
    """A database migrated before key rotation: its first pass records the configured key from size 0; a rotation
    at the same time as the upgrade records the previous key from 0 when it is configured."""
    api.file(trader, submit=True)
    settle(runtime, checkpointer)
    tamper(database_url, ("DELETE FROM ledger_keys", {}))
    _new_prov, new_checkpointer = rotated(prov, runtime, cosign=True)
    new_checkpointer.checkpoint_now()
    with runtime.engine.connect() as conn:
        size = storage.log_size(conn)
    assert [(k.valid_from_size, k.verifier) for k in history(runtime).keys] == [
        (0, prov.verifier),
        (size + 1, NEW.verifier),
    ]
    tamper(database_url, ("DELETE FROM ledger_keys", {}))
    checkpointer.checkpoint_now()
    assert [(k.valid_from_size, k.verifier) for k in history(runtime).keys] == [(0, prov.verifier)]


def test_verify_holds_the_latest_checkpoint_to_a_witness_quorum_and_sees_a_deleted_suffix(
    api: Api,
    trader: dict[str, str],
    runtime: Runtime,
    prov: Provenance,
    checkpointer: Checkpointer,
    database_url: str,
    cli_env: None,
    tmp_path: Path,
) -> None:
    witnesses = [Cosigner.from_seed(f"w{i}.partner.test", hashlib.sha256(bytes([i])).digest()) for i in range(2)]
    served = Witness(witnesses[0], {ORIGIN: [prov.verifier]}, WitnessState(tmp_path / "w0.sqlite"))
    table = table_of(WitnessCosignature)
    sizes = []
    old = 0
    for _ in range(2):
        api.file(trader, submit=True)
        settle(runtime, checkpointer)
        with runtime.engine.connect() as conn:
            size, note = storage.get_checkpoint(conn) or (0, b"")
            proof = reader.consistency_proof(conn, old, size) if old else []
        line = served.add_checkpoint(encode_add_checkpoint(old, proof, note))
        with unit_of_work(runtime.sessions) as session:
            session.execute(
                table.insert().values(
                    checkpoint_size=size, witness=witnesses[0].verifier.vkey, line=line, cosigned_at=utcnow()
                )
            )
        sizes.append(size)
        old = size
    runner = CliRunner()
    w0, w1 = (w.verifier.vkey for w in witnesses)
    ok = runner.invoke(ledger_app, ["verify", "--witness", w0])
    assert ok.exit_code == 0, ok.output
    assert f"witnessed: the latest checkpoint carries 1 valid cosignature(s) (quorum 1): {w0}" in ok.stdout
    short = runner.invoke(ledger_app, ["verify", "--witness", w0, "--witness", w1])
    assert short.exit_code == 1
    assert short.stderr.count("\n") == 1
    assert f"[checkpoint] the latest checkpoint ({sizes[-1]}) is not witnessed" in short.stderr
    assert runner.invoke(ledger_app, ["verify", "--witness", w0, "--witness", w1, "--quorum", "1"]).exit_code == 0
    too_many = runner.invoke(ledger_app, ["verify", "--witness", w0, "--quorum", "2"])
    assert too_many.exit_code == 2
    assert too_many.stderr.count("\n") == 1

    # The operator deletes the last checkpoint's entries with their nodes and checkpoint, but the witness cosigned
    # it: the log is shorter than what was witnessed.
    k = sizes[0]
    tamper(
        database_url,
        ("DELETE FROM ledger_entries WHERE idx >= :k", {"k": k}),
        ("DELETE FROM ledger_nodes WHERE ((idx + 1) << level) > :k", {"k": k}),
        ("DELETE FROM ledger_anchors WHERE checkpoint_size > :k", {"k": k}),
        ("DELETE FROM ledger_checkpoints WHERE size > :k", {"k": k}),
    )
    rolled = runner.invoke(ledger_app, ["verify"])
    assert rolled.exit_code == 1
    assert rolled.stderr.count("\n") == 1
    assert (
        f"[rollback] rolled back: a witness cosigned the checkpoint of size {sizes[1]} (its checkpoint row is gone "
        f"too) but the log has {k} entries"
    ) in rolled.stderr
    with runtime.engine.connect() as conn:
        assert conn.execute(select(table.c.checkpoint_size)).scalars().all()


def test_the_single_key_endpoint_stays_the_current_key(client: TestClient, prov: Provenance) -> None:
    resp = client.get(f"{LEDGER}/public-key")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.text == prov.verifier.vkey + "\n"
    listing = client.get(f"{LEDGER}/public-keys").json()
    # Before the first checkpoint pass the configured key is listed, not yet recorded.
    assert [(k["vkey"], k["valid_from_size"], k["recorded_at"]) for k in listing["keys"]] == [
        (prov.verifier.vkey, 0, None)
    ]


def test_bad_key_histories_are_one_line_errors(tmp_path: Path, cli_env: None, client: Any) -> None:
    bundle = tmp_path / "b.json"
    bundle.write_text("{}")
    runner = CliRunner()
    for text in ("", "not-a-key 0", '{"keys": 3}', f"{NEW.verifier.vkey} 0\n{NEW.verifier.vkey} 5"):
        keys = tmp_path / "keys.txt"
        keys.write_text(text)
        for args in (["verify-bundle", str(bundle), "--keys", str(keys)], ["verify", "--keys", str(keys)]):
            result = runner.invoke(ledger_app, args)
            assert result.exit_code in (1, 2), (args, result.output)
            assert result.stderr.count("\n") == 1, result.stderr
            assert result.stderr.startswith("error: ")
    missing = runner.invoke(ledger_app, ["verify-bundle", str(bundle), "--keys", str(tmp_path / "none")])
    assert missing.exit_code == 1
    assert "cannot read the key history" in missing.stderr
    with pytest.raises(BundleError):
        verify_bundle(b"{}", keys=KeyHistory.single(NEW.verifier))


def test_a_database_migrated_before_rotation_gets_an_append_only_key_table(database_url: str) -> None:
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.exc import DBAPIError

    from services.kernel.migrate import upgrade

    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            # As p0003 left it: no ledger_keys (p0001 creates it only since this table exists).
            for stmt in storage.drop_trigger_statements(conn.dialect.name):
                if "ledger_keys" in stmt:
                    conn.exec_driver_sql(stmt)
            conn.exec_driver_sql("DROP TABLE ledger_keys")
            conn.execute(text("UPDATE alembic_version SET version_num = 'p0003_cosignatures' "
                              "WHERE version_num = 'p0004_ledger_keys'"))  # fmt: skip
        upgrade(database_url)
        with engine.connect() as conn:
            assert inspect(conn).has_table("ledger_keys")
        with engine.begin() as conn:
            storage.insert_key(conn, 0, NEW.verifier.vkey, utcnow())
        for statement in ("UPDATE ledger_keys SET valid_from_size = 7", "DELETE FROM ledger_keys"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.exec_driver_sql(statement)
        with engine.connect() as conn:
            assert storage.key_rows(conn)[0][:2] == (0, NEW.verifier.vkey)
    finally:
        engine.dispose()
