"""Request limits shared by the one-process app and the gateway."""

from __future__ import annotations

# Endpoints that receive files (documents, gate camera images): they get SMARTGATE_MAX_UPLOAD_BYTES, the rest
# SMARTGATE_MAX_BODY_BYTES. Risk model files (ONNX, about 5 MB) are uploaded too.
UPLOAD_PATHS = (r"/api/v1/declarations/[^/]+/documents", r"/api/v1/gate/events", r"/api/v1/risk/models")
