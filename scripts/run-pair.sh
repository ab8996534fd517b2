#!/usr/bin/env bash
# Both sides of the crossing on this machine: Kim Thành (vn-kimthanh) on http://127.0.0.1:${VN_PORT:-8000} and Hekou
# (cn-hekou) on http://127.0.0.1:${CN_PORT:-8001}, each with its own database, ledger key and demo keys, each running
# a witness of the other's log (ports ${VN_WITNESS_PORT:-8070} and ${CN_WITNESS_PORT:-8071}) so that every checkpoint
# of one side is cosigned by the other administration. State under ${SMARTGATE_PAIR_VAR_DIR:-var/pair}/{vn,cn}.
# SQLite by default; SMARTGATE_PAIR_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/smartgate_pair gives each side
# a PostgreSQL database (smartgate_pair_vn, smartgate_pair_cn). Ctrl-C stops both. The steps are in api/pair.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m api.pair "$@"
