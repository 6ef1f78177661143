#!/usr/bin/env bash
# scripts/test.sh — run the whole Go test suite against PostgreSQL.
#
# DB setup (DATABASE_URL / ACIDIC_PG_BINDIR, starting or installing a local
# server when needed) lives in scripts/db.sh; see the comments there.
# Extra arguments are passed to `go test`, e.g. scripts/test.sh -run TestFoo -v
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/db.sh
source scripts/db.sh
acidic_ensure_go

# -race needs cgo and a C compiler (not part of a bare Go install).
export CGO_ENABLED=1
if ! command -v "$(go env CC)" >/dev/null 2>&1; then
	# root: apt-get install (helper from db.sh); otherwise fail clearly.
	if ! _acidic_apt_install gcc libc6-dev; then
		echo "test.sh: ERROR: no C compiler ($(go env CC)); go test -race needs one (apt-get install gcc)" >&2
		exit 1
	fi
fi

exec go test -race -count=1 -timeout 20m ./... "$@"
