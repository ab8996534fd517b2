"""Settings of the provenance service: the log's origin and signing key, checkpoint cadence, and the anchor chain."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from services.kernel.settings import KernelSettings


class ProvenanceSettings(KernelSettings):
    """Kernel settings plus the ledger's (`SMARTGATE_LEDGER_*`) and the anchor chain's (`SMARTGATE_CHAIN_*`)."""

    # The first line of every checkpoint: the log's identity. Changing it starts a different log. Unset: the
    # administration's (kimthanh.smartgate/ledger on the Vietnamese side, hekou.smartgate/ledger on the Chinese one).
    ledger_origin: str = "kimthanh.smartgate/ledger"
    # `PRIVATE+KEY+name+keyid+base64` (`smartgate ledger keygen NAME`); empty means a development key under var_dir,
    # which is refused outside development.
    ledger_signing_key: SecretStr = SecretStr("")
    # The key being retired by a rotation (docs/ledger.md, "Key rotation"), same form: while it is set, the first
    # checkpoint signed by a newly recorded key is cosigned by it. Empty: rotations are not cosigned.
    ledger_previous_signing_key: SecretStr = SecretStr("")
    ledger_checkpoint_seconds: float = Field(default=2.0, gt=0)
    ledger_checkpoint_entries: int = Field(default=1000, ge=1)
    # Anchor (one chain transaction) at most this often while the log keeps growing; when it stops growing the
    # latest checkpoint is anchored at the next pass. Every checkpoint is still signed and served.
    ledger_anchor_seconds: float = Field(default=30.0, ge=0)
    # Empty: anchor on an in-process eth-tester chain (a development chain). Otherwise any JSON-RPC endpoint.
    chain_rpc_url: str = ""
    # Hex private key that signs anchor transactions locally; empty uses the node's first unlocked account.
    chain_private_key: SecretStr = SecretStr("")
    # How receipts name the chain (default: "EVM chain <chain id>").
    chain_label: str = ""
    # C2SP tlog-witnesses every new checkpoint is submitted to: `URL|VKEY,URL|VKEY` (URL is the submission prefix,
    # VKEY the witness's cosignature key from `smartgate witness keygen`). Empty: checkpoints are not witnessed.
    ledger_witnesses: str = ""
    # How many of them must cosign for a checkpoint to count as witnessed (reported, logged; 0 = all of them).
    ledger_witness_quorum: int = Field(default=0, ge=0)
    # Per witness request; a witness that is down costs a checkpoint pass at most this long.
    ledger_witness_timeout_seconds: float = Field(default=2.0, gt=0)

    @field_validator("ledger_origin")
    @classmethod
    def _one_line(cls, value: str) -> str:
        """A checkpoint origin is one non-empty line."""
        if not value or "\n" in value or value != value.strip():
            raise ValueError("SMARTGATE_LEDGER_ORIGIN must be one non-empty line without surrounding spaces")
        return value

    @field_validator("ledger_witnesses")
    @classmethod
    def _witnesses_parse(cls, value: str) -> str:
        """Each witness is `URL|VKEY` with a cosignature/v1 key, none listed twice."""
        from ledger.verify import CheckpointError
        from ledger.witness_client import parse_witnesses

        try:
            parse_witnesses(value)
        except (ValueError, CheckpointError) as exc:
            raise ValueError(f"SMARTGATE_LEDGER_WITNESSES: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _origin_of_administration(self) -> ProvenanceSettings:
        """The profile's origin unless SMARTGATE_LEDGER_ORIGIN says otherwise."""
        from services.kernel.administration import profile

        if "ledger_origin" not in self.model_fields_set:
            self.ledger_origin = profile(self.administration).ledger_origin
        return self

    @model_validator(mode="after")
    def _quorum_fits(self) -> ProvenanceSettings:
        """The quorum cannot ask for more witnesses than are configured."""
        count = len([w for w in self.ledger_witnesses.split(",") if w.strip()])
        if self.ledger_witness_quorum > count:
            raise ValueError(f"SMARTGATE_LEDGER_WITNESS_QUORUM={self.ledger_witness_quorum} but {count} witnesses")
        return self

    @model_validator(mode="after")
    def _no_development_chain_in_production(self) -> ProvenanceSettings:
        """Anchors on an in-process chain vanish with the process: production must name a real chain."""
        if self.environment == "production" and not self.chain_rpc_url:
            raise ValueError("SMARTGATE_CHAIN_RPC_URL must be set when SMARTGATE_ENVIRONMENT=production")
        return self

    @property
    def key_environment(self) -> str:
        """The environment the signing-key rule applies to: tests get development's throwaway key under var_dir."""
        return "development" if self.environment == "test" else self.environment


def provenance_settings(base: KernelSettings) -> ProvenanceSettings:
    """Provenance settings: the kernel fields of `base` (the process's), the ledger fields from the environment."""
    if isinstance(base, ProvenanceSettings):
        return base
    # Init values win over the environment in pydantic-settings: the runtime's kernel settings stay authoritative.
    return ProvenanceSettings(**base.model_dump())
