package postgres

import (
	"embed"
	"strings"

	"github.com/acidic-go/acidic/internal/base/sqlfile"
	"github.com/jackc/pgx/v5"
)

//go:embed sql/*.sql
var sqlFiles embed.FS

// Column lists shared by the queries and the scan functions; keep the order of
// each in step with scanJob and scanRun.
const (
	jobColumns = "id, queue, kind, args, run_id, state, priority, attempt, max_attempts, " +
		"scheduled_at, attempted_at, coalesce(attempted_by, ''), finalized_at, errors, meta, " +
		"unique_key, coalesce(unique_states, 0), created_at, depends_on, dependency_failure, tags"
	outboxColumns = "id, topic, key, payload, run_id, attempts, next_attempt_at, delivered_at, coalesce(last_error, ''), created_at, meta"
)

// runColumnList is runColumns with each column name prefixed: "r." for
// {run_columns_r}, the run columns in a statement that joins runs as r.
func runColumnList(prefix string) string {
	cols := []string{"id", "idempotency_key", "workflow", "args", "state", "queue", "recovery_point", "definition_hash",
		"attrs", "cursor", "coalesce(%slocked_by, '')", "locked_at", "last_run_at", "parent_run_id",
		"coalesce(%sparent_step, '')", "awaiting", "coalesce(%serror, '')", "result", "created_at", "updated_at", "finished_at", "settled_at", "tags"}
	for i, c := range cols {
		if strings.Contains(c, "%s") {
			cols[i] = strings.ReplaceAll(c, "%s", prefix)
		} else {
			cols[i] = prefix + c
		}
	}
	return strings.Join(cols, ", ")
}

var runColumns = runColumnList("")

// queries holds every named query with the schema filled in (see package
// sqlfile for the files' form).
type queries = sqlfile.Queries // the driver's name for them

func loadQueries(schema string) (queries, error) {
	return sqlfile.Load(sqlFiles, "sql", "postgres", strings.NewReplacer(
		"{schema}", pgx.Identifier{schema}.Sanitize(),
		"{job_columns}", jobColumns,
		"{run_columns}", runColumns,
		"{run_columns_r}", runColumnList("r."),
		"{outbox_columns}", outboxColumns,
	))
}
