"""Traceability: a GS1 EPCIS 2.0 repository (capture, query, CBV 2.0 event hashes anchored in the ledger)."""
