"""Request limits shared by the one-process app and the gateway."""

from __future__ import annotations

# Endpoints that receive files (documents, gate camera images): they get SMARTGATE_MAX_UPLOAD_BYTES, the rest
# SMARTGATE_MAX_BODY_BYTES.
UPLOAD_PATHS = (r"/api/v1/declarations/[^/]+/documents", r"/api/v1/gate/events")
