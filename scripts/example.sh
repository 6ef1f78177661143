#!/usr/bin/env bash
# scripts/example.sh — run the payment example.
#
# Without DATABASE_URL it runs on a SQLite file (ACIDIC_DB, else ./acidic.db):
# nothing is started or installed, no PostgreSQL and no root are needed. With
# DATABASE_URL set it runs on that database, checked first by scripts/db.sh
# (see the comments there). Extra arguments are passed to the example program,
# e.g. make example ARGS='-crash-after=charge -order order-7'.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -z "${DATABASE_URL:-}" ]]; then
	if ! command -v go >/dev/null 2>&1; then
		if [[ -x /usr/local/go/bin/go ]]; then
			export PATH="/usr/local/go/bin:${PATH}"
		else
			printf 'example.sh: go not found on PATH (nor /usr/local/go/bin/go); install Go first\n' >&2
			exit 1
		fi
	fi
	printf 'example.sh: DATABASE_URL is not set: the example runs on the SQLite file %s\n' "${ACIDIC_DB:-./acidic.db}" >&2
	exec go run ./examples/payment "$@"
fi

# shellcheck source=scripts/db.sh
source scripts/db.sh
acidic_ensure_go

exec go run ./examples/payment "$@"
