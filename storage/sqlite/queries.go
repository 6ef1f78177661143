package sqlite

import (
	"embed"
	"strings"

	"github.com/acidic-go/acidic/internal/base/sqlfile"
)

//go:embed sql/*.sql
var sqlFiles embed.FS

// Column lists shared by the queries and the scan functions; keep the order of
// each in step with scanJob, runRow.dest and scanOutbox.
const (
	jobColumns = "id, queue, kind, args, run_id, state, priority, attempt, max_attempts, " +
		"scheduled_at, attempted_at, coalesce(attempted_by, ''), finalized_at, errors, meta, " +
		"unique_key, coalesce(unique_states, 0), created_at, depends_on, dependency_failure, tags"
	runColumns = "id, idempotency_key, workflow, args, state, queue, recovery_point, definition_hash, " +
		"attrs, cursor, coalesce(locked_by, ''), locked_at, last_run_at, parent_run_id, " +
		"coalesce(parent_step, ''), awaiting, coalesce(error, ''), result, created_at, updated_at, finished_at, settled_at, tags"
	periodicColumns = "name, kind, spec, tz, policy, last_run_at, next_run_at, updated_at"
	nodeColumns     = "id, hostname, pid, version, queues, started_at, heartbeat_at, expires_at"
	outboxColumns   = "id, topic, key, payload, run_id, attempts, next_attempt_at, delivered_at, coalesce(last_error, ''), created_at, meta"
)

// queries holds every named query (see package sqlfile for the files'
// form). A statement that ends in a semicolon and nothing else is prepared
// once and reused; anything after it would make the library parse the text
// again at every call.
//
// A LIMIT (or OFFSET) taken from a parameter is written "LIMIT $2 + 0", not
// "LIMIT $2": SQLite plans a bare parameter there with its bound value, so
// binding another value (a fetch of 3 jobs after one of 4) makes the
// prepared statement expire and be parsed and planned again at its next
// step, about 40 µs of CPU on the writer each time.
type queries = sqlfile.Queries // the driver's name for them

func loadQueries() (queries, error) {
	return sqlfile.Load(sqlFiles, "sql", "sqlite", strings.NewReplacer(
		"{job_columns}", jobColumns,
		"{run_columns}", runColumns,
		"{outbox_columns}", outboxColumns,
		"{node_columns}", nodeColumns,
		"{periodic_columns}", periodicColumns,
	))
}
