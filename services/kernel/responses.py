"""The JSON response of every endpoint: Starlette's, rendered by orjson (same bytes for our documents, faster)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse as _StarletteJSONResponse


class JSONResponse(_StarletteJSONResponse):
    """Compact UTF-8 JSON, as Starlette renders it, serialised by orjson."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
