"""Provenance service: appends every domain event to the ledger, checkpoints, anchors, and serves proofs and bundles."""
