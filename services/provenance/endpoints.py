"""HTTP endpoints of the ledger: public checkpoint and proofs, officer-only entries, owner-only bundles."""

from __future__ import annotations

import weakref
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import Field

from ledger import bundle as ledger_bundle
from ledger import storage
from ledger.witness import add_cosignatures
from services.kernel import confidential
from services.kernel.auth import Role
from services.kernel.deps import CurrentOfficer, CurrentPrincipal, SessionDep
from services.kernel.errors import AppError, Forbidden, NotFound, Unprocessable
from services.kernel.responses import JSONResponse
from services.kernel.schemas import Schema, problems
from services.provenance import service
from services.provenance.service import Provenance

router = APIRouter(prefix="/api/v1/ledger", tags=["ledger"])

# Bounds that keep every value inside a BIGINT (larger ones are a 422, never a database error).
MAX_INDEX = 2**62
B64_HASH = "base64 of a 32-byte SHA-256"
# Every /api/ operation documents these (the platform's OpenAPI contract), public ones included.
DOCUMENTED = (401, 403, 422)


def text_response(example: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entry of a text/plain 200 response."""
    return {200: {"content": {"text/plain": {"schema": {"type": "string"}, "example": example}}}}


def get_provenance(request: Request) -> Provenance:
    """The provenance service of this process."""
    prov: Provenance = request.app.state.runtime.extras["provenance"]
    return prov


class Entry(Schema):
    """One ledger entry: its exact leaf bytes (RFC 8785 JSON, base64) and leaf hash, and the event payload."""

    index: int = Field(description="Position of the entry in the log, from 0.", examples=[41])
    event_id: str = Field(
        description="Identifier of the platform event the entry records (UUID).",
        examples=["0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10"],
    )
    subject: str = Field(
        description="What the event is about: a declaration id, or e.g. `rule-set:2026.1`.",
        examples=["0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10"],
    )
    leaf_hash: str = Field(
        description="RFC 9162 leaf hash of `leaf`: SHA-256 of 0x00 and the leaf bytes (base64).",
        examples=["nyxeC20aS3yOPyodDJuKf25dTDsqHw6djHtqX049LBs="],
    )
    leaf: str = Field(
        description="The exact leaf bytes (RFC 8785 canonical JSON of the event's envelope), base64.",
        examples=["eyJldmVudF9pZCI6Ii4uLiJ9"],
    )
    payload: str | None = Field(
        description="The event payload as RFC 8785 canonical JSON, base64; its SHA-256 is the leaf's "
        "`payload_sha256`. Null when payloads were not asked for.",
        examples=["eyJjaGFubmVsIjoieWVsbG93In0="],
    )


class EntryPage(Schema):
    """Entries [start, end) of the log, at most 1000; `next_start` is where the next page begins (null at the end)."""

    tree_size: int = Field(description="Number of entries in the log now.", examples=[1024])
    start: int = Field(description="Index of the first entry of this page.", examples=[0])
    end: int = Field(description="One past the index of the last entry of this page.", examples=[1000])
    entries: list[Entry] = Field(description="The entries, in log order.")
    next_start: int | None = Field(description="`start` of the next page; null at the end of the log.", examples=[1000])


class InclusionProof(Schema):
    """RFC 9162 inclusion proof of entry `index` in the tree of `tree_size` entries (hashes in base64)."""

    index: int = Field(description="Index of the entry proven.", examples=[41])
    tree_size: int = Field(description="Size of the tree the proof is against.", examples=[1024])
    leaf_hash: str = Field(
        description="Leaf hash of the entry, SHA-256 (base64).",
        examples=["nyxeC20aS3yOPyodDJuKf25dTDsqHw6djHtqX049LBs="],
    )
    root_hash: str = Field(
        description="Root hash of the tree of `tree_size` entries, SHA-256 (base64).",
        examples=["nyxeC20aS3yOPyodDJuKf25dTDsqHw6djHtqX049LBs="],
    )
    proof: list[str] = Field(
        description="The audit path: sibling hashes from the leaf up, SHA-256 (base64) each.",
        examples=[["nyxeC20aS3yOPyodDJuKf25dTDsqHw6djHtqX049LBs="]],
    )


class ConsistencyProof(Schema):
    """RFC 9162 consistency proof between the trees of `first` and `second` entries (hashes in base64)."""

    first: int = Field(description="Size of the older tree.", examples=[512])
    second: int = Field(description="Size of the newer tree.", examples=[1024])
    first_root: str = Field(
        description="Root hash of the older tree, SHA-256 (base64).",
        examples=["nyxeC20aS3yOPyodDJuKf25dTDsqHw6djHtqX049LBs="],
    )
    second_root: str = Field(
        description="Root hash of the newer tree, SHA-256 (base64).",
        examples=["nyxeC20aS3yOPyodDJuKf25dTDsqHw6djHtqX049LBs="],
    )
    proof: list[str] = Field(
        description="The consistency proof's hashes (RFC 9162 §2.1.4), SHA-256 (base64) each.",
        examples=[["nyxeC20aS3yOPyodDJuKf25dTDsqHw6djHtqX049LBs="]],
    )


CHECKPOINT_EXAMPLE = (
    "kimthanh.smartgate/ledger\n42\nyj9oe8EmezEX4OL7YqteZmYow+xnZMfrLg/VpVlDVh0=\n\n"
    "\u2014 smartgate-dev xGNyNkU3JoMQerz27f9vk4ek2NGrg0cw35ytgqeAVcIt8QI9J9oI58UeZ0zAeV5pa"
    "O0f4IJD/snEfkNJK+41L4VI5QQ=\n"
)


@router.get(
    "/checkpoint",
    summary="The latest signed checkpoint (public)",
    response_class=PlainTextResponse,
    responses={**text_response(CHECKPOINT_EXAMPLE), **problems(*DOCUMENTED, 404)},
)
def get_checkpoint(
    session: SessionDep,
    size: Annotated[
        int | None, Query(ge=1, le=MAX_INDEX, description="a given checkpoint instead of the latest")
    ] = None,
) -> PlainTextResponse:
    """The C2SP signed note of the latest checkpoint (origin, tree size, base64 root, Ed25519 signature line).

    Verify it with the key from `/api/v1/ledger/public-key`; anchors of it are in every bundle built against it.
    """
    found = storage.get_checkpoint(session.connection(), size)
    if found is None:
        what = f"no checkpoint of size {size}" if size is not None else "the ledger has no checkpoint yet"
        raise NotFound(what, code="ledger.no_checkpoint")
    cp_size, note = found
    # With the witnesses' cosignature lines appended (C2SP tlog-cosignature); the log's own line comes first.
    note = add_cosignatures(note, service.cosignature_lines(session.connection(), cp_size))
    return PlainTextResponse(note.decode(), headers={"X-Ledger-Tree-Size": str(cp_size), "Cache-Control": "no-cache"})


@router.get(
    "/public-key",
    summary="The log's verifier key (public)",
    response_class=PlainTextResponse,
    responses={
        **text_response("smartgate-dev+1a2b3c4d+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"),
        **problems(*DOCUMENTED),
    },
)
def get_public_key(request: Request) -> PlainTextResponse:
    """The signed-note verifier key `name+keyid+base64` that signs new checkpoints and bundles (pin it with --key);
    after a key rotation, `/public-keys` lists the earlier keys with the sizes they signed."""
    return PlainTextResponse(get_provenance(request).verifier.vkey + "\n")


class PublicKey(Schema):
    """One signing key of the log (C2SP vkey) and the checkpoint sizes it signs: [valid_from_size,
    valid_until_size)."""

    vkey: str = Field(
        description="The verifier key in C2SP signed-note form: `<name>+<key id hex>+<base64 of type byte and "
        "Ed25519 public key>`.",
        examples=["kimthanh.smartgate/ledger+5c2a9e01+AXEsPFh/2WqGvqbz3Fm0NvJ+NUIvmWf4r8C5ZPk0yvT8"],
    )
    name: str = Field(description="The key's name (the log's origin).", examples=["kimthanh.smartgate/ledger"])
    key_id: str = Field(description="The key's 4-byte id (hex), as in signature lines.", examples=["5c2a9e01"])
    valid_from_size: int = Field(description="The smallest checkpoint size this key signs.", examples=[0])
    valid_until_size: int | None = Field(
        description="The size from which the next key signs (exclusive bound); null for the current key.",
        examples=[4096],
    )
    recorded_at: str | None = Field(
        description="When the key was recorded (ISO 8601); null if not known.", examples=["2026-11-01T00:00:00+00:00"]
    )
    current: bool = Field(description="Whether this key signs new checkpoints.")


class PublicKeys(Schema):
    """The log's key history: every key that ever signed its checkpoints, oldest first (`verify-bundle --keys`,
    `ledger verify --keys` read this document)."""

    format: str = Field(description="Version of this document's format.", examples=["smartgate-ledger-keys/v1"])
    origin: str = Field(description="The log's origin line, as in checkpoints.", examples=["kimthanh.smartgate/ledger"])
    keys: list[PublicKey] = Field(description="Every key, oldest first.")


@router.get(
    "/public-keys",
    summary="Every signing key of the log with its validity (public)",
    response_model=PublicKeys,
    responses=problems(*DOCUMENTED),
)
def get_public_keys(request: Request, session: SessionDep) -> dict[str, Any]:
    """The key history: each key signs the checkpoints of size >= `valid_from_size` and below the next key's. Save
    it and give it to `smartgate ledger verify-bundle --keys FILE` to verify bundles from before and after a key
    rotation; `/public-key` stays the current key alone."""
    prov = get_provenance(request)
    history = prov.published_keys(session.connection())
    return history.to_json(prov.origin)


@router.get(
    "/entries",
    summary="Ledger entries with their exact leaf bytes (officers and admins)",
    response_model=EntryPage,
    responses=problems(*DOCUMENTED),
)
def list_entries(
    session: SessionDep,
    _officer: CurrentOfficer,
    start: Annotated[int, Query(ge=0, le=MAX_INDEX, description="first index")] = 0,
    end: Annotated[int | None, Query(ge=0, le=MAX_INDEX, description="one past the last index")] = None,
) -> dict[str, Any]:
    """Entries [start, end), at most 1000 per page: with them anyone can recompute every leaf hash and root."""
    return service.entries_page(session.connection(), start=start, end=end)


@router.get(
    "/proofs/inclusion",
    summary="Inclusion proof of an entry, by index or by leaf hash (public)",
    response_model=InclusionProof,
    responses=problems(*DOCUMENTED, 404),
)
def inclusion_proof(
    session: SessionDep,
    index: Annotated[int | None, Query(ge=0, le=MAX_INDEX)] = None,
    leaf_hash: Annotated[str | None, Query(max_length=100, description=f"hex or {B64_HASH}")] = None,
    tree_size: Annotated[
        int | None, Query(ge=1, le=MAX_INDEX, description="default: the latest checkpoint's size")
    ] = None,
) -> dict[str, Any]:
    """The audit path from one entry to the root of the tree of `tree_size` entries (RFC 9162 §2.1.3)."""
    return service.inclusion(session.connection(), index=index, leaf_hash=leaf_hash, tree_size=tree_size)


@router.get(
    "/proofs/consistency",
    summary="Consistency proof between two tree sizes (public)",
    response_model=ConsistencyProof,
    responses=problems(*DOCUMENTED, 404),
)
def consistency_proof(
    session: SessionDep,
    first: Annotated[int, Query(ge=1, le=MAX_INDEX)],
    second: Annotated[
        int | None, Query(ge=1, le=MAX_INDEX, description="default: the latest checkpoint's size")
    ] = None,
) -> dict[str, Any]:
    """Proof that the tree of `second` entries extends the tree of `first` entries (RFC 9162 §2.1.4)."""
    return service.consistency(session.connection(), first=first, second=second)


@router.get(
    "/subjects/{subject}/bundle",
    summary="A subject's self-contained provenance bundle (its owner, officers, admins)",
    responses={
        200: {
            "description": f"a `{ledger_bundle.FORMAT}` JSON document; verify it offline with "
            "`smartgate ledger verify-bundle FILE`",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **problems(*DOCUMENTED, 404),
    },
)
def subject_bundle(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    subject: Annotated[str, Path(max_length=200, description="a declaration id, or e.g. `rule-set:2026.1`")],
    payloads: Annotated[bool, Query(description="include the event payloads (false: hashes only)")] = True,
) -> Response:
    """The subject's entries with inclusion proofs to one checkpoint, the signed checkpoint, its anchor receipts,
    and the log's public key, signed by the log: everything needed to check the history offline.

    A trader gets bundles of its own organisation's declarations only (any other subject is a 404).
    """
    if principal.role is Role.trader:
        if "\x00" in subject or service.subject_owner(session, subject) != principal.organisation_id:
            raise NotFound(f"no bundle for {subject!r}", code="ledger.no_subject")
    elif principal.role not in (Role.officer, Role.supervisor, Role.admin):
        raise Forbidden(f"role '{principal.role.value}' may not fetch provenance bundles")
    if "\x00" in subject:
        raise NotFound(f"no bundle for {subject!r}", code="ledger.no_subject")
    # Entries recorded before the audit's confidentiality change keep their old payloads (append-only): a trader
    # gets their leaves and proofs, not those payloads.
    show = confidential.trader_may_read if principal.role is Role.trader else None
    document = service.build_bundle(get_provenance(request), subject, include_payloads=payloads, show_payload=show)
    filename = "".join(c if c.isalnum() or c in "-_." else "_" for c in subject)[:80]
    return Response(
        ledger_bundle.dumps(document),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="bundle-{filename}.json"'},
    )


@router.get(
    "/public-bundles",
    summary="Bundles of public subjects (EPCIS events) against one checkpoint (public)",
    responses={
        200: {
            "description": "`tree_size` (the checkpoint), `bundles` (one `smartgate-ledger-bundle/v1` per subject "
            "inside it) and `pending` (subjects not yet in a checkpoint)",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **problems(*DOCUMENTED, 404),
    },
)
def public_bundles(
    request: Request,
    subject: Annotated[
        list[str],
        Query(description="an `epcis:{id}` subject (repeat for several, at most 200)"),
    ],
) -> JSONResponse:
    """The provenance bundles of supply-chain events (subjects `epcis:…`), all proven against the latest
    checkpoint, for the buyer's trace page and `smartgate trace bundle`. Any other subject is a 404: declarations
    and gate events are not public."""
    if len(subject) > service.MAX_PUBLIC_SUBJECTS:
        raise Unprocessable(
            f"at most {service.MAX_PUBLIC_SUBJECTS} subjects per request", code="ledger.too_many_subjects"
        )
    for one in subject:
        if not service.public_subject(one):
            raise NotFound(f"no public bundle for {one[:200]!r}", code="ledger.no_subject")
    return JSONResponse(service.build_public_bundles(get_provenance(request), subject))


# --- The whole log as C2SP tlog-tiles (https://c2sp.org/tlog-tiles): public, static-style and cacheable ---------
# The tlog prefix is /api/v1/ledger/log: `<prefix>/checkpoint`, `<prefix>/tile/<L>/<N>[.p/<W>]` and
# `<prefix>/tile/entries/<N>[.p/<W>]`. Entry bundles hold the leaves only (ids, types, times, hashes), never payloads.

# A full tile or bundle can never change (the tree is append-only); a partial one is superseded when it fills, and
# the checkpoint moves every few seconds (the spec: no caching "beyond a few seconds").
IMMUTABLE = "public, max-age=31536000, immutable"
PARTIAL_TILE_CACHE = "public, max-age=60"
CHECKPOINT_CACHE = "public, max-age=2"
# Entry bundles are JSON text: gzip (level 1: ~4x smaller for a fraction of a millisecond) when the client takes it.
GZIP_LEVEL = 1
OCTETS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
}


# The largest checkpoint size each process has seen, per provenance service: sizes only grow, so a tile inside it
# needs no checkpoint lookup (a monitor reading the whole log saves one query per tile).
_CHECKPOINTED: weakref.WeakKeyDictionary[Provenance, int] = weakref.WeakKeyDictionary()


def _read_tile(prov: Provenance, tile: Any) -> bytes:
    """The tile's bytes if the latest checkpoint's tree holds it (else 404), on a pooled DBAPI connection.

    Two statements at most, one usually: a Connection would add BEGIN, ROLLBACK and the engine's per-transaction
    settings around them, a quarter of a tile's CPU time; these rows are immutable, so the reads need no more."""
    from ledger import tiles

    raw = prov.read_engine.raw_connection()
    try:
        cursor = raw.cursor()
        known = _CHECKPOINTED.get(prov, 0)
        if tile.needs_size > known:
            cursor.execute(f"SELECT max(size) FROM {storage.checkpoints.name}")
            found = cursor.fetchone()
            size = None if found is None or found[0] is None else int(found[0])
            if size is None or tile.needs_size > size:
                raise NotFound(
                    f"{tile.path} is not in the latest checkpoint's tree (size {size or 0})", code="ledger.no_tile"
                )
            _CHECKPOINTED[prov] = max(known, size)
        sql, params = tiles.tile_query(tile, prov.engine.dialect.paramstyle)
        cursor.execute(sql, params)
        rows = [bytes(r[0]) for r in cursor.fetchall()]
        cursor.close()
    finally:
        raw.close()  # back to the pool, which rolls back whatever the driver began
    try:
        return tiles.tile_from_rows(tile, rows)
    except LookupError as exc:
        raise NotFound(str(exc), code="ledger.tile_missing") from exc


def _accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding value takes gzip (`gzip`, `x-gzip` or `*`, without q=0)."""
    for item in header.lower().split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip() in ("gzip", "x-gzip", "*"):
            q = params.strip().removeprefix("q=").strip() if params.strip().startswith("q=") else "1"
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False


@router.get(
    "/log/checkpoint",
    summary="The log's latest checkpoint, for tile clients (public, C2SP tlog-tiles)",
    response_class=PlainTextResponse,
    responses={**text_response(CHECKPOINT_EXAMPLE), **problems(*DOCUMENTED, 404)},
)
def log_checkpoint(request: Request) -> PlainTextResponse:
    """The latest signed checkpoint with the witnesses' cosignature lines: the tree size that bounds every tile
    served under `/api/v1/ledger/log/tile/` (C2SP tlog-tiles `<prefix>/checkpoint`). Cached for 2 seconds at most."""
    prov = get_provenance(request)
    with prov.read_engine.connect() as conn:
        found = storage.get_checkpoint(conn)
        if found is None:
            raise NotFound("the ledger has no checkpoint yet", code="ledger.no_checkpoint")
        size, note = found
        note = add_cosignatures(note, service.cosignature_lines(conn, size))
    return PlainTextResponse(
        note.decode(), headers={"X-Ledger-Tree-Size": str(size), "Cache-Control": CHECKPOINT_CACHE}
    )


@router.get(
    "/log/tile/{tile_path:path}",
    summary="A Merkle tree tile or an entry bundle of the log (public, C2SP tlog-tiles)",
    response_class=Response,
    responses={**OCTETS, **problems(*DOCUMENTED, 400, 404)},
)
def log_tile(
    request: Request,
    tile_path: Annotated[
        str,
        Path(
            description="`<L>/<N>[.p/<W>]` (hash tile of level L) or `entries/<N>[.p/<W>]` (entry bundle); N in "
            "3-digit elements, all but the last prefixed with x (1234067 → x001/x234/067)",
        ),
    ],
) -> Response:
    """A tile: 256 (or W) consecutive hashes of tree level 8·L, 32 bytes each; or an entry bundle: the leaves of
    level-0 tile N, each as a big-endian uint16 length and the leaf bytes (RFC 8785 JSON of ids, types, times and
    hashes; payloads are not published). Only tiles inside the latest checkpoint's tree are served. Full tiles are
    immutable (cached for a year), partial ones for a minute."""
    import gzip

    from ledger import tiles

    try:
        tile = tiles.parse_tile_path(f"tile/{tile_path}")
    except tiles.TilePathError as exc:
        raise AppError(f"not a tile path: {exc}", code="ledger.tile_path") from exc
    data = _read_tile(get_provenance(request), tile)
    headers = {"Cache-Control": IMMUTABLE if tile.full else PARTIAL_TILE_CACHE}
    if tile.entries:
        headers["Vary"] = "Accept-Encoding"
        if _accepts_gzip(request.headers.get("accept-encoding", "")):
            data = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
            headers["Content-Encoding"] = "gzip"
    return Response(data, media_type="application/octet-stream", headers=headers)
