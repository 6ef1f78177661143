#!/usr/bin/env bash
# scripts/example.sh — run the payment example against PostgreSQL.
#
# DB setup (DATABASE_URL / ACIDIC_PG_BINDIR, starting or installing a local
# server when needed) lives in scripts/db.sh; see the comments there.
# Extra arguments are passed to the example program.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/db.sh
source scripts/db.sh
acidic_ensure_go

exec go run ./examples/payment "$@"
