"""Compact JWS (RFC 7515) with Ed25519 through joserfc: what our side signs and how a partner's signature is checked.

The signed payload is the RFC 8785 form of the message, so that the bytes are the same whoever serialises it.
The header is `{"alg": "EdDSA", "kid": <key id>, "typ": "smartgate-exchange+jws"}` (docs/exchange.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import warnings
from dataclasses import dataclass
from typing import Any

from joserfc import jws as _jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

ALG = "EdDSA"
TYP = "smartgate-exchange+jws"
# RFC 9864 names the fully specified "Ed25519" algorithm and deprecates "EdDSA"; the contract between the two
# administrations still says "EdDSA" (the same Ed25519 signature), so joserfc's warning is expected here.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=Warning)


class JwsError(ValueError):
    """Not a compact JWS we accept, or a signature that does not verify."""


@dataclass(frozen=True, slots=True)
class Signer:
    """Our signing key: its id and the private key."""

    kid: str
    key: OKPKey

    @classmethod
    def from_seed(cls, kid: str, seed: bytes) -> Signer:
        """The signer of a 32-byte Ed25519 seed."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        private = Ed25519PrivateKey.from_private_bytes(seed)
        return cls(kid, OKPKey.import_key(private, parameters={"kid": kid}))

    def public_jwk(self) -> dict[str, Any]:
        """Our public key as a JWK (kty OKP, crv Ed25519, x, kid), what a partner registers."""
        jwk = self.key.as_dict(private=False)
        return {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"], "kid": self.kid, "use": "sig", "alg": ALG}

    def sign(self, payload: bytes, *, typ: str = TYP) -> str:
        """A compact JWS of `payload` (already canonical bytes)."""
        header = {"alg": ALG, "kid": self.kid, "typ": typ}
        return _jws.serialize_compact(header, payload, self.key, algorithms=[ALG])


def public_key(jwk: dict[str, Any]) -> OKPKey:
    """A partner's public key from its JWK (Ed25519 only, no private part)."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str) or "d" in jwk:
        raise JwsError("the key must be a public Ed25519 JWK: {kty: OKP, crv: Ed25519, x, kid}")
    try:
        key = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": jwk["x"]})
    except (JoseError, ValueError) as exc:
        raise JwsError(f"not an Ed25519 public key: {exc}") from exc
    if len(_b64decode(jwk["x"])) != 32:
        raise JwsError("an Ed25519 public key is 32 bytes")
    return key


def _b64decode(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as exc:
        raise JwsError("not base64url") from exc


def header_of(token: str) -> dict[str, Any]:
    """The protected header, unverified (to find the key by `kid`); refuses anything but our form."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise JwsError("not a compact JWS (three base64url parts separated by dots)")
    try:
        header = json.loads(_b64decode(parts[0]))
    except (JwsError, ValueError) as exc:
        raise JwsError("the JWS header is not base64url JSON") from exc
    if not isinstance(header, dict):
        raise JwsError("the JWS header is not a JSON object")
    if header.get("alg") != ALG:
        raise JwsError(f"the JWS algorithm must be {ALG}")
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        raise JwsError("the JWS header has no kid")
    if set(header) - {"alg", "kid", "typ"}:
        raise JwsError("the JWS header carries members other than alg, kid and typ (crit is not supported)")
    return header


def verify(token: str, key: OKPKey, *, typ: str = TYP) -> bytes:
    """The payload bytes of `token` if its signature verifies under `key` and its `typ` is `typ`."""
    header = header_of(token)
    if header.get("typ") != typ:
        raise JwsError(f"the JWS typ must be {typ}")
    try:
        return bytes(_jws.deserialize_compact(token, key, algorithms=[ALG]).payload)
    except (JoseError, ValueError) as exc:
        raise JwsError("the signature does not verify") from exc


def unverified_payload(token: str) -> bytes:
    """The payload of a compact JWS without checking anything (for records of what was refused)."""
    parts = token.split(".")
    return _b64decode(parts[1]) if len(parts) == 3 else b""


def token_hash(token: str) -> str:
    """`sha256:<hex>` of the JWS bytes (what receipts and the ledger name)."""
    return "sha256:" + hashlib.sha256(token.encode("ascii", "replace")).hexdigest()
