package postgres

import (
	"bufio"
	"embed"
	"fmt"
	"io/fs"
	"strings"

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
	outboxColumns = "id, topic, key, payload, run_id, attempts, next_attempt_at, delivered_at, coalesce(last_error, ''), created_at"
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

// queries holds every named query with the schema filled in. A query may use
// a piece of SQL shared with others, defined after a "-- fragment: NAME" line,
// as {fragment:NAME}.
type queries map[string]string

func loadQueries(schema string) (queries, error) {
	quoted := pgx.Identifier{schema}.Sanitize()
	replacer := strings.NewReplacer(
		"{schema}", quoted,
		"{job_columns}", jobColumns,
		"{run_columns}", runColumns,
		"{run_columns_r}", runColumnList("r."),
		"{outbox_columns}", outboxColumns,
	)
	out := queries{}
	err := fs.WalkDir(sqlFiles, "sql", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := sqlFiles.ReadFile(path)
		if err != nil {
			return err
		}
		var name string
		var b strings.Builder
		flush := func() error {
			if name == "" {
				return nil
			}
			if _, dup := out[name]; dup {
				return fmt.Errorf("postgres: query %q defined twice", name)
			}
			out[name] = replacer.Replace(strings.TrimSpace(b.String()))
			b.Reset()
			return nil
		}
		sc := bufio.NewScanner(strings.NewReader(string(body)))
		for sc.Scan() {
			line := sc.Text()
			if n, ok := strings.CutPrefix(line, "-- name: "); ok {
				if err := flush(); err != nil {
					return err
				}
				name = strings.TrimSpace(n)
				continue
			}
			if n, ok := strings.CutPrefix(line, "-- fragment: "); ok {
				if err := flush(); err != nil {
					return err
				}
				name = fragmentRef(strings.TrimSpace(n))
				continue
			}
			if name != "" && !strings.HasPrefix(strings.TrimSpace(line), "--") {
				b.WriteString(line)
				b.WriteByte('\n')
			}
		}
		return flush()
	})
	if err != nil {
		return nil, err
	}
	return out.expandFragments()
}

func fragmentRef(name string) string { return "{fragment:" + name + "}" }

// expandFragments puts the fragments into the queries that use them and
// drops them from q.
func (q queries) expandFragments() (queries, error) {
	var pairs []string
	for name, body := range q {
		if strings.HasPrefix(name, "{fragment:") {
			pairs = append(pairs, name, body)
			delete(q, name)
		}
	}
	expand := strings.NewReplacer(pairs...)
	for name, body := range q {
		q[name] = expand.Replace(body)
		if strings.Contains(q[name], "{fragment:") {
			return nil, fmt.Errorf("postgres: query %q uses an undefined fragment", name)
		}
	}
	return q, nil
}

func (q queries) get(name string) string {
	s, ok := q[name]
	if !ok {
		// Query names are constants in this package; the tests load every one.
		panic("postgres: no query named " + name)
	}
	return s
}
