"""Verifiable ledger: RFC 9162 Merkle log, signed checkpoints, EVM anchors, offline proofs and bundles."""
