package cli_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
)

// TestBinaryExitStatuses builds cmd/acidic and runs it as a process with an
// environment of its own, checking the exit status and output of each
// documented outcome: success, failure, usage (including an empty database),
// not found, not migrated; DATABASE_URL and ACIDIC_SCHEMA from the
// environment; global flags before and after the command.
func TestBinaryExitStatuses(t *testing.T) {
	t.Parallel()
	drv := testdb.New(t, testdb.Options{MaxConns: 2})
	unmigrated := testdb.New(t, testdb.Options{MaxConns: 1, Unmigrated: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client, err := queue.New(drv, queue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	job, err := client.Enqueue(ctx, "plain", nil, queue.EnqueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(job.ID, 10)
	bin := binary(t)
	db := "DATABASE_URL=" + testdb.URL()
	schema := "ACIDIC_SCHEMA=" + drv.Schema()
	// libpq's variables point at the test database: a command given no
	// database must not fall back to them.
	pg := []string{"PGHOST=127.0.0.1", "PGPORT=5432", "PGUSER=postgres", "PGDATABASE=acidic_test"}

	for _, c := range []struct {
		name   string
		env    []string
		args   []string
		code   int
		stdout string // stdout must contain it ("" means empty)
		stderr string // stderr must contain it ("" means empty)
	}{
		{"help", nil, []string{"help"}, 0, "Exit status:", ""},
		{"no command", nil, nil, 2, "", "no command given"},
		// No database named: the default store, ./acidic.db (created, not
		// migrated), never libpq's PG* variables.
		{"no database", pg, []string{"queues"}, 5, "", "acidic: the SQLite file acidic.db (default) is not migrated (run: acidic migrate up)\n"},
		{"an empty DATABASE_URL", append([]string{"DATABASE_URL="}, pg...), []string{"queues"}, 2, "", "DATABASE_URL is set but empty: unset it to use the SQLite file"},
		{"an empty ACIDIC_DB", append([]string{"ACIDIC_DB="}, pg...), []string{"queues"}, 2, "", "ACIDIC_DB is set but empty"},
		{"an empty -database", append([]string{db}, pg...), []string{"-database", "", "queues"}, 2, "", "-database is empty"},
		{"an empty -database after the command", []string{db}, []string{"queues", "-database="}, 2, "", "-database is empty"},
		{"bench without a database", pg, []string{"bench", "-quick"}, 2, "", "no database: set DATABASE_URL or pass -database"},
		{"bench help without a database", nil, []string{"bench", "-h"}, 0, "acidic bench measures", ""},
		{"usage", []string{db, schema}, []string{"runs", "list", "extra"}, 2, "", `runs list: unexpected argument "extra"`},
		{"success", []string{db, schema}, []string{"jobs", "list"}, 0, "plain", ""},
		{"success, -json before", []string{db, schema}, []string{"-json", "jobs", "list"}, 0, `"kind": "plain"`, ""},
		{"success, -json after", []string{db, schema}, []string{"jobs", "list", "-json"}, 0, `"kind": "plain"`, ""},
		{"success, --json between", []string{db, schema}, []string{"jobs", "--json", "get", id}, 0, `"kind": "plain"`, ""},
		{"success, -json after the ID", []string{db, schema}, []string{"jobs", "get", id, "--json"}, 0, `"kind": "plain"`, ""},
		{"schema by flag", []string{db}, []string{"jobs", "list", "-schema", drv.Schema()}, 0, "plain", ""},
		{"not found", []string{db, schema}, []string{"runs", "get", uuid.NewString()}, 4, "", "not found in schema " + drv.Schema()},
		{"job not found", []string{db, schema}, []string{"jobs", "cancel", "999999"}, 4, "", "job 999999 not found"},
		{"not migrated", []string{db, "ACIDIC_SCHEMA=" + unmigrated.Schema()}, []string{"runs", "list"}, 5, "",
			`acidic: schema "` + unmigrated.Schema() + `" is not migrated (run: acidic -schema ` + unmigrated.Schema() + " migrate up)\n"},
		{"a database that does not answer", []string{"DATABASE_URL=postgres://postgres@127.0.0.1:1/acidic_test?sslmode=disable"}, []string{"queues"}, 1, "", "cannot reach the database (DATABASE_URL)"},
		{"bench on a database that does not answer", []string{"DATABASE_URL=postgres://postgres@127.0.0.1:1/acidic_test?sslmode=disable"}, []string{"bench", "-quick", "-q", "-scenario", "enqueue"}, 1, "", "acidic bench:"},
	} {
		r := exe(t, bin, c.env, c.args...)
		if r.code != c.code {
			t.Errorf("%s: acidic %s exited %d, want %d\nstdout: %s\nstderr: %s", c.name, strings.Join(c.args, " "), r.code, c.code, r.stdout, r.stderr)
		}
		for _, o := range []struct{ name, got, want string }{{"stdout", r.stdout, c.stdout}, {"stderr", r.stderr, c.stderr}} {
			if (o.want == "" && o.got != "") || !strings.Contains(o.got, o.want) {
				t.Errorf("%s: acidic %s: %s is %q, want it to say %q", c.name, strings.Join(c.args, " "), o.name, o.got, o.want)
			}
		}
	}

	// The job of the jobs list above is the only one, and migrate up
	// through the binary makes the unmigrated schema usable.
	r := exe(t, bin, []string{db, schema}, "-json", "jobs", "list")
	var jobs []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &jobs); err != nil || len(jobs) != 1 || jobs[0]["id"] != float64(job.ID) {
		t.Errorf("jobs list -json: %v %s", err, r.stdout)
	}
	if r := exe(t, bin, []string{db, "ACIDIC_SCHEMA=" + unmigrated.Schema()}, "migrate", "up"); r.code != 0 {
		t.Errorf("migrate up: exit %d\n%s", r.code, r.stderr)
	}
	if r := exe(t, bin, []string{db, "ACIDIC_SCHEMA=" + unmigrated.Schema()}, "runs", "list"); r.code != 0 || r.stdout != "no runs match in schema "+unmigrated.Schema()+"\n" {
		t.Errorf("runs list after migrate up: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if st, err := unmigrated.Migrator().Status(ctx); err != nil || !st[len(st)-1].Applied || len(st) != unmigrated.Migrator().Latest() {
		t.Errorf("after migrate up through the binary: %+v, %v", st, err)
	}
}
