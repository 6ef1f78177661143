package sqlite

import (
	"bufio"
	"embed"
	"fmt"
	"io/fs"
	"strings"
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
	outboxColumns   = "id, topic, key, payload, run_id, attempts, next_attempt_at, delivered_at, coalesce(last_error, ''), created_at"
)

// queries holds every named query. A query may use a piece of SQL shared with
// others, defined after a "-- fragment: NAME" line, as {fragment:NAME}.
type queries map[string]string

func loadQueries() (queries, error) {
	replacer := strings.NewReplacer(
		"{job_columns}", jobColumns,
		"{run_columns}", runColumns,
		"{outbox_columns}", outboxColumns,
		"{node_columns}", nodeColumns,
		"{periodic_columns}", periodicColumns,
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
				return fmt.Errorf("sqlite: query %q defined twice", name)
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
				name = "{fragment:" + strings.TrimSpace(n) + "}"
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
	var pairs []string
	for name, body := range out {
		if strings.HasPrefix(name, "{fragment:") {
			pairs = append(pairs, name, body)
			delete(out, name)
		}
	}
	expand := strings.NewReplacer(pairs...)
	for name, body := range out {
		// Fragments may use fragments: expand until nothing changes.
		for i := 0; i < 4 && strings.Contains(body, "{fragment:"); i++ {
			body = expand.Replace(body)
		}
		if strings.Contains(body, "{fragment:") {
			return nil, fmt.Errorf("sqlite: query %q uses an undefined fragment", name)
		}
		// A statement that ends in a semicolon and nothing else is prepared
		// once and reused; anything after it would make the library parse
		// the text again at every call.
		out[name] = strings.TrimSpace(body)
	}
	return out, nil
}

// get returns the query named name. Query names are constants in this
// package; the tests load every one.
func (q queries) get(name string) string {
	s, ok := q[name]
	if !ok {
		panic("sqlite: no query named " + name)
	}
	return s
}
