#!/usr/bin/env bash
# scripts/bench.sh — run `acidic bench` against PostgreSQL.
#
# The acidic command has no built-in database; this script provides one the
# way scripts/example.sh does (DATABASE_URL as given, or a local server set up
# by scripts/db.sh). Extra arguments are passed to `acidic bench`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/db.sh
source scripts/db.sh
acidic_ensure_go

exec go run ./cmd/acidic bench "$@"
