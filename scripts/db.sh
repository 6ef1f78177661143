#!/usr/bin/env bash
# scripts/db.sh — shared PostgreSQL setup for scripts/test.sh and scripts/example.sh.
#
# Usage:
#   source scripts/db.sh          # from another bash script: runs the setup and
#                                 # exports DATABASE_URL (+ ACIDIC_PG_BINDIR)
#   eval "$(scripts/db.sh)"       # from an interactive shell: prints export lines
#
# What it does:
#   * DATABASE_URL already set  -> used as is; nothing is started or created. We
#     only check (with a short retry loop) that it is reachable.
#   * DATABASE_URL unset        -> local server on 127.0.0.1:5432, database
#     acidic_test. If nothing answers there, the Debian PostgreSQL packages are
#     installed (root only) and cluster <version>/main is created/started with
#     pg_ctlcluster. Then a working login for user postgres over TCP is found:
#       1. postgres://postgres@127.0.0.1:5432/...            (pg_hba "trust")
#       2. postgres://postgres:postgres@127.0.0.1:5432/...   (pg_hba "scram"/"md5",
#          the Debian default for host 127.0.0.1/32). If (2) is not accepted yet,
#          we set that password through the local Unix socket as the postgres OS
#          user (Debian default pg_hba: "local all postgres peer"):
#            runuser -u postgres -- psql -c "ALTER USER postgres PASSWORD 'postgres'"
#     and database acidic_test is created if missing.
#   * ACIDIC_PG_BINDIR is exported when a directory holding initdb, pg_ctl and
#     postgres is found (e.g. /usr/lib/postgresql/15/bin); otherwise left unset.
#
# Knobs (optional, mainly for testing this script): ACIDIC_PG_PORT (default
# 5432), ACIDIC_PG_CLUSTER (Debian cluster name, default main), ACIDIC_PG_DB
# (default acidic_test).
#
# Messages go to stderr; errors exit the (sourcing) script with status 1.

_acidic_log() { printf 'db.sh: %s\n' "$*" >&2; }
_acidic_die() {
	printf 'db.sh: ERROR: %s\n' "$*" >&2
	exit 1
}

_acidic_is_root() { [[ "$(id -u)" -eq 0 ]]; }

# psql that never prompts (CI has no stdin) and does not hang on dead hosts.
_acidic_psql() {
	PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-5}" psql -X -w -q -v ON_ERROR_STOP=1 "$@"
}

# Make sure `go` is on PATH (a fresh tarball install lives in /usr/local/go).
acidic_ensure_go() {
	if ! command -v go >/dev/null 2>&1; then
		if [[ -x /usr/local/go/bin/go ]]; then
			export PATH="/usr/local/go/bin:${PATH}"
		else
			_acidic_die "go not found on PATH (nor /usr/local/go/bin/go); install Go first"
		fi
	fi
}

# apt-get install, root only.
_acidic_apt_install() {
	_acidic_is_root || return 1
	command -v apt-get >/dev/null 2>&1 || return 1
	_acidic_log "installing: $*"
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# Prints the highest-version /usr/lib/postgresql/<v>/bin holding a server, if any.
_acidic_debian_bindir() {
	local d
	# shellcheck disable=SC2012 # version-sort of a fixed, space-free glob
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
		if [[ -x "$d/postgres" && -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
			printf '%s\n' "$d"
			return 0
		fi
	done
	return 1
}

# Prints a directory holding initdb, pg_ctl and postgres, if any.
_acidic_find_bindir() {
	local d
	if [[ -n "${ACIDIC_PG_BINDIR:-}" && -x "${ACIDIC_PG_BINDIR}/initdb" ]]; then
		printf '%s\n' "$ACIDIC_PG_BINDIR"
		return 0
	fi
	_acidic_debian_bindir && return 0
	if command -v pg_config >/dev/null 2>&1; then
		d="$(pg_config --bindir 2>/dev/null || true)"
		if [[ -n "$d" && -x "$d/postgres" && -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
			printf '%s\n' "$d"
			return 0
		fi
	fi
	if command -v initdb >/dev/null 2>&1; then
		d="$(dirname "$(command -v initdb)")"
		if [[ -x "$d/postgres" && -x "$d/pg_ctl" ]]; then
			printf '%s\n' "$d"
			return 0
		fi
	fi
	return 1
}

# Exit status: 0 accepting connections, 1 something answers but rejects
# (e.g. starting up), 2 nothing answers.
_acidic_probe() {
	local host="$1" port="$2" rc=0
	if command -v pg_isready >/dev/null 2>&1; then
		pg_isready -q -h "$host" -p "$port" -t 2 || rc=$?
		case "$rc" in
		0 | 1) return "$rc" ;;
		*) return 2 ;;
		esac
	fi
	# shellcheck disable=SC2016 # $1/$2 expand in the child bash
	if timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null; then
		return 0
	fi
	return 2
}

_acidic_wait_ready() {
	local host="$1" port="$2" secs="$3" i
	for ((i = 0; i < secs; i++)); do
		_acidic_probe "$host" "$port" && return 0
		sleep 1
	done
	return 1
}

# Run a command as the postgres OS user (from / so psql can't complain about cwd).
_acidic_as_postgres() {
	if [[ "$(id -un)" == postgres ]]; then
		(cd / && "$@")
	elif _acidic_is_root && command -v runuser >/dev/null 2>&1; then
		(cd / && runuser -u postgres -- "$@")
	elif _acidic_is_root; then
		local q
		printf -v q '%q ' "$@"
		(cd / && su postgres -s /bin/bash -c "$q")
	else
		return 1
	fi
}

# Start the local Debian cluster <version>/<name> so it serves on $port.
_acidic_start_local_server() {
	local port="$1" cluster="$2" bindir ver conf_port st=0
	if ! bindir="$(_acidic_debian_bindir)"; then
		if ! _acidic_is_root; then
			_acidic_die "no PostgreSQL answers on 127.0.0.1:${port} and no server is installed.
  Either run as root (the server is then installed with apt-get), or set DATABASE_URL, e.g.
  DATABASE_URL='postgres://user:pass@host:5432/acidic_test?sslmode=disable' make test"
		fi
		_acidic_apt_install postgresql postgresql-contrib ||
			_acidic_die "apt-get install postgresql failed; set DATABASE_URL to an existing server instead"
		bindir="$(_acidic_debian_bindir)" ||
			_acidic_die "postgresql installed but no /usr/lib/postgresql/*/bin/postgres found"
	fi
	ver="$(basename "$(dirname "$bindir")")"

	command -v pg_ctlcluster >/dev/null 2>&1 ||
		_acidic_die "pg_ctlcluster not found (postgresql-common missing); start PostgreSQL yourself or set DATABASE_URL"

	if [[ ! -d "/etc/postgresql/${ver}/${cluster}" ]]; then
		_acidic_is_root || _acidic_die "cluster ${ver}/${cluster} does not exist and we are not root to create it; set DATABASE_URL"
		_acidic_log "creating cluster ${ver}/${cluster} on port ${port}"
		pg_createcluster --port "$port" "$ver" "$cluster" >&2 ||
			_acidic_die "pg_createcluster ${ver} ${cluster} failed"
	fi

	conf_port="$(pg_lsclusters -h 2>/dev/null | awk -v v="$ver" -v c="$cluster" '$1 == v && $2 == c { print $3 }')"
	if [[ -n "$conf_port" && "$conf_port" != "$port" ]]; then
		_acidic_die "cluster ${ver}/${cluster} is configured for port ${conf_port}, not ${port};
  fix /etc/postgresql/${ver}/${cluster}/postgresql.conf or set DATABASE_URL"
	fi

	pg_ctlcluster "$ver" "$cluster" status >/dev/null 2>&1 || st=$?
	if [[ "$st" -eq 0 ]]; then
		_acidic_log "cluster ${ver}/${cluster} already running; waiting for it on 127.0.0.1:${port}"
	else
		_acidic_log "starting cluster ${ver}/${cluster}"
		pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" start >&2 || {
			tail -n 20 "/var/log/postgresql/postgresql-${ver}-${cluster}.log" >&2 2>/dev/null || true
			_acidic_die "pg_ctlcluster ${ver} ${cluster} start failed"
		}
	fi

	if ! _acidic_wait_ready 127.0.0.1 "$port" 30; then
		tail -n 20 "/var/log/postgresql/postgresql-${ver}-${cluster}.log" >&2 2>/dev/null || true
		_acidic_die "PostgreSQL ${ver}/${cluster} did not accept connections on 127.0.0.1:${port} within 30s"
	fi
}

# Prints a userinfo ("postgres" or "postgres:postgres") that can log in over TCP.
_acidic_find_login() {
	local port="$1" u
	for u in postgres postgres:postgres; do
		if _acidic_psql "postgres://${u}@127.0.0.1:${port}/postgres?sslmode=disable" -Atc 'select 1' >/dev/null 2>&1; then
			printf '%s\n' "$u"
			return 0
		fi
	done
	# Debian default pg_hba: scram for 127.0.0.1, peer for the Unix socket.
	# Give postgres the password "postgres" through the socket, then retry.
	_acidic_log "no password-less TCP login for postgres; setting password 'postgres' via the local socket"
	if _acidic_as_postgres psql -X -q -p "$port" -d postgres -v ON_ERROR_STOP=1 \
		-c "ALTER USER postgres PASSWORD 'postgres'" >&2; then
		if _acidic_psql "postgres://postgres:postgres@127.0.0.1:${port}/postgres?sslmode=disable" -Atc 'select 1' >/dev/null 2>&1; then
			printf '%s\n' "postgres:postgres"
			return 0
		fi
	fi
	return 1
}

_acidic_ensure_psql() {
	command -v psql >/dev/null 2>&1 && return 0
	_acidic_apt_install postgresql-client ||
		_acidic_die "psql not found; install postgresql-client (or run as root) or set DATABASE_URL"
}

# DATABASE_URL given: only check that it is reachable.
_acidic_check_given_url() {
	local i out="" hostport host port
	if command -v psql >/dev/null 2>&1; then
		for ((i = 0; i < 10; i++)); do
			if out="$(_acidic_psql "$DATABASE_URL" -Atc 'show server_version' 2>&1)"; then
				_acidic_log "using DATABASE_URL (server version ${out})"
				return 0
			fi
			sleep 1
		done
		_acidic_die "DATABASE_URL is set but the database is not reachable:
  ${out}"
	fi
	# No psql: a plain TCP check on host:port parsed from the URL.
	if [[ "$DATABASE_URL" =~ ^postgres(ql)?://([^@/]*@)?([^/?]*) ]]; then
		hostport="${BASH_REMATCH[3]}"
		host="${hostport%%:*}"
		port=5432
		[[ "$hostport" == *:* ]] && port="${hostport##*:}"
		[[ -n "$host" ]] || host=127.0.0.1
		if _acidic_wait_ready "$host" "$port" 10; then
			_acidic_log "using DATABASE_URL (${host}:${port} answers; psql not installed, login not checked)"
			return 0
		fi
		_acidic_die "DATABASE_URL is set but nothing answers on ${host}:${port}"
	fi
	_acidic_log "WARNING: psql not installed and DATABASE_URL not parsable; not checking it"
}

acidic_db_setup() {
	local port="${ACIDIC_PG_PORT:-5432}" cluster="${ACIDIC_PG_CLUSTER:-main}"
	local db="${ACIDIC_PG_DB:-acidic_test}" bindir login admin exists version st=0

	if [[ -n "${DATABASE_URL:-}" ]]; then
		_acidic_check_given_url
	else
		_acidic_probe 127.0.0.1 "$port" || st=$?
		if [[ "$st" -eq 2 ]]; then
			_acidic_log "nothing answers on 127.0.0.1:${port}"
			_acidic_start_local_server "$port" "$cluster"
		elif [[ "$st" -eq 1 ]] && ! _acidic_wait_ready 127.0.0.1 "$port" 30; then
			_acidic_die "PostgreSQL on 127.0.0.1:${port} answers but does not accept connections"
		fi
		_acidic_ensure_psql

		login="$(_acidic_find_login "$port")" ||
			_acidic_die "cannot log in as postgres on 127.0.0.1:${port} (tried no password and password 'postgres').
  Fix pg_hba.conf or set DATABASE_URL"

		admin="postgres://${login}@127.0.0.1:${port}/postgres?sslmode=disable"
		exists="$(_acidic_psql "$admin" -Atc "select 1 from pg_database where datname = '${db}'")" ||
			_acidic_die "cannot query pg_database on ${admin}"
		if [[ "$exists" != 1 ]]; then
			_acidic_log "creating database ${db}"
			# A concurrent run may win the race; only fail if it still doesn't exist.
			_acidic_psql "$admin" -c "CREATE DATABASE \"${db}\"" >/dev/null 2>&1 ||
				[[ "$(_acidic_psql "$admin" -Atc "select 1 from pg_database where datname = '${db}'")" == 1 ]] ||
				_acidic_die "could not create database ${db}"
		fi

		export DATABASE_URL="postgres://${login}@127.0.0.1:${port}/${db}?sslmode=disable"
		version="$(_acidic_psql "$DATABASE_URL" -Atc 'show server_version')" ||
			_acidic_die "cannot connect to ${DATABASE_URL}"
		_acidic_log "PostgreSQL ${version} ready: DATABASE_URL=${DATABASE_URL}"
	fi

	if bindir="$(_acidic_find_bindir)"; then
		export ACIDIC_PG_BINDIR="$bindir"
		_acidic_log "ACIDIC_PG_BINDIR=${ACIDIC_PG_BINDIR}"
	else
		unset ACIDIC_PG_BINDIR
		_acidic_log "no initdb/pg_ctl/postgres found; ACIDIC_PG_BINDIR left unset"
	fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	# Executed directly: set up, then print export lines for eval.
	set -euo pipefail
	acidic_db_setup
	printf 'export DATABASE_URL=%s\n' "${DATABASE_URL@Q}"
	if [[ -n "${ACIDIC_PG_BINDIR:-}" ]]; then
		printf 'export ACIDIC_PG_BINDIR=%s\n' "${ACIDIC_PG_BINDIR@Q}"
	fi
else
	acidic_db_setup
fi
