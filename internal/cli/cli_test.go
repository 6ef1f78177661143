package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/acidic-go/acidic/internal/cli"
	"github.com/acidic-go/acidic/internal/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

// digest fingerprints every row of runs, jobs and run_steps in a schema.
func digest(t *testing.T, drv *postgres.Driver) string {
	t.Helper()
	q := func(name, order string) string {
		return "coalesce((SELECT md5(string_agg(x::text, '|' ORDER BY " + order + ")) FROM " +
			pgx.Identifier{drv.Schema(), name}.Sanitize() + " x), 'empty')"
	}
	var d string
	err := drv.Pool().QueryRow(context.Background(), "SELECT "+q("runs", "x.id")+" || "+q("jobs", "x.id")+" || "+q("run_steps", "x.run_id, x.position")).Scan(&d)
	if err != nil {
		t.Fatalf("digest: %v", err)
	}
	return d
}

func schemaExists(t *testing.T, drv *postgres.Driver, schema string) bool {
	t.Helper()
	var ok bool
	if err := drv.Pool().QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestBadInputGetsAClearErrorAndChangesNothing drives the acidic command with
// malformed arguments and unreachable databases: usage mistakes exit with 2,
// failed operations with 1, each with a message on stderr that says what was
// wrong, nothing on stdout, and no row of runs, jobs or run_steps changed.
func TestBadInputGetsAClearErrorAndChangesNothing(t *testing.T) {
	t.Parallel()
	drv := testdb.New(t, testdb.Options{MaxConns: 4})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Rows to leave alone: a succeeded run (drained in-process), a pending
	// run and a plain job.
	wf := workflow.Define("cli", workflow.Options{}, steps.Do("only", func(context.Context, *steps.Context[struct{}, struct{}]) error { return nil }))
	eng, err := workflow.NewEngine(drv, workflow.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Register(wf); err != nil {
		t.Fatal(err)
	}
	done, err := eng.Enqueue(ctx, "cli", struct{}{}, workflow.EnqueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Queue().Drain(ctx, queue.DefaultQueue, queue.DrainOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Enqueue(ctx, "cli", struct{}{}, workflow.EnqueueOptions{Queue: "parked"}); err != nil {
		t.Fatal(err)
	}
	job, err := eng.Queue().Enqueue(ctx, "plain", nil, queue.EnqueueOptions{Queue: "parked"})
	if err != nil {
		t.Fatal(err)
	}

	unknownRun := uuid.NewString()
	unknownJob := fmt.Sprint(job.ID + 1000)
	missingSchema := "cli_missing_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	const secret = "s3cret-pa55"
	deadURL := "postgres://postgres:" + secret + "@127.0.0.1:1/acidic_test?sslmode=disable&connect_timeout=2"

	type tc struct {
		name    string
		args    []string
		code    int
		mention string // stderr must contain this
	}
	usage := []tc{
		{"no command", nil, 2, "Usage"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"unknown global flag", []string{"-nope", "queues"}, 2, "-nope"},
		{"jobs without a subcommand", []string{"jobs"}, 2, "jobs needs"},
		{"jobs list with a zero limit", []string{"jobs", "list", "-limit", "0"}, 2, "-limit must be at least 1"},
		{"runs list with a negative limit", []string{"runs", "list", "-limit", "-5"}, 2, "-limit must be at least 1"},
		{"runs list with an unknown state", []string{"runs", "list", "-state", "done"}, 2, `unknown state "done"`},
		{"jobs get without an id", []string{"jobs", "get"}, 2, "needs one job ID"},
		{"jobs get with two ids", []string{"jobs", "get", "1", "2"}, 2, "needs one job ID"},
		{"job id not a number", []string{"jobs", "get", "abc"}, 2, `job ID "abc"`},
		{"job id zero", []string{"jobs", "cancel", "0"}, 2, `job ID "0"`},
		{"job id negative", []string{"jobs", "retry", "-5"}, 2, `job ID "-5"`},
		{"job id too large", []string{"jobs", "get", "99999999999999999999"}, 2, `job ID "99999999999999999999"`},
		{"unknown jobs subcommand", []string{"jobs", "frob", "1"}, 2, `unknown jobs command "frob"`},
		{"unknown job state", []string{"jobs", "list", "-state", "running,bogus"}, 2, `unknown state "bogus"`},
		{"job list limit not a number", []string{"jobs", "list", "-limit", "x"}, 2, "jobs list"},
		{"unknown jobs list flag", []string{"jobs", "list", "-colour", "red"}, 2, "jobs list"},
		{"run id not a UUID", []string{"runs", "get", "not-a-uuid"}, 2, `run ID "not-a-uuid" is not a UUID`},
		{"run id a number", []string{"runs", "cancel", "123"}, 2, `run ID "123" is not a UUID`},
		{"runs without a subcommand", []string{"runs"}, 2, "runs needs"},
		{"unknown run state", []string{"runs", "list", "-state", "finished"}, 2, `unknown state "finished"`},
		{"job state given for runs", []string{"runs", "list", "-state", "discarded"}, 2, `unknown state "discarded"`},
		{"unknown runs subcommand", []string{"runs", "frob", unknownRun}, 2, `unknown runs command "frob"`},
		{"migrate without a subcommand", []string{"migrate"}, 2, "migrate needs"},
		{"unknown migrate subcommand", []string{"migrate", "sideways"}, 2, `unknown migrate command "sideways"`},
		{"migrate down without a version", []string{"migrate", "down"}, 2, "needs a VERSION"},
		{"migrate down with a version that is not a number", []string{"migrate", "down", "x"}, 2, `version "x" is not a number`},
	}
	operation := []tc{
		{"migrate down to an unknown version", []string{"migrate", "down", "99"}, 1, "unknown version"},
		{"migrate down to a negative version", []string{"migrate", "down", "-1"}, 1, "unknown version"},
		{"get an unknown job", []string{"jobs", "get", unknownJob}, 1, "not found"},
		{"cancel an unknown job", []string{"jobs", "cancel", unknownJob}, 1, "not found"},
		{"retry an unknown job", []string{"jobs", "retry", unknownJob}, 1, "not found"},
		{"get an unknown run", []string{"runs", "get", unknownRun}, 1, "not found"},
		{"retry an unknown run", []string{"runs", "retry", unknownRun}, 1, "not found"},
		{"cancel an unknown run", []string{"runs", "cancel", unknownRun}, 1, "not found"},
		{"retry a succeeded run", []string{"runs", "retry", done.Run.ID.String()}, 1, "cannot be retried"},
		{"a database that does not answer", []string{"-database", deadURL, "queues"}, 1, "127.0.0.1"},
		{"a malformed database URL", []string{"-database", "postgres://[::1", "jobs", "list"}, 1, "database"},
		{"a schema that was never migrated", []string{"-schema", missingSchema, "queues"}, 1, missingSchema},
		{"jobs of a schema that was never migrated", []string{"-schema", missingSchema, "jobs", "get", "1"}, 1, missingSchema},
	}

	base := []string{"-database", testdb.URL(), "-schema", drv.Schema()}
	for _, group := range [][]tc{usage, operation} {
		for _, c := range group {
			before := digest(t, drv)
			var stdout, stderr bytes.Buffer
			var code int
			start := time.Now()
			func() {
				defer func() {
					if p := recover(); p != nil {
						code = -1
						t.Errorf("%s: acidic %s panicked: %v", c.name, strings.Join(c.args, " "), p)
					}
				}()
				code = cli.Run(ctx, append(append([]string{}, base...), c.args...), &stdout, &stderr)
			}()
			took := time.Since(start)
			if code != c.code && code != -1 {
				t.Errorf("%s: acidic %s exited %d, want %d\nstderr: %s", c.name, strings.Join(c.args, " "), code, c.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), c.mention) {
				t.Errorf("%s: stderr does not say %q:\n%s", c.name, c.mention, stderr.String())
			}
			if strings.Contains(stderr.String(), secret) {
				t.Errorf("%s: stderr shows the database password:\n%s", c.name, stderr.String())
			}
			if stdout.Len() > 0 {
				t.Errorf("%s: printed to stdout on failure:\n%s", c.name, stdout.String())
			}
			if took > 20*time.Second {
				t.Errorf("%s: took %s", c.name, took)
			}
			if after := digest(t, drv); after != before {
				t.Errorf("%s: rows of runs, jobs or run_steps changed", c.name)
			}
		}
	}
	if schemaExists(t, drv, missingSchema) {
		t.Errorf("commands on schema %s created it", missingSchema)
		testdb.DropSchema(t, missingSchema)
	}
	// The tables are all still there (migrate down with a bad version did
	// not revert anything).
	var code int
	var stdout, stderr bytes.Buffer
	code = cli.Run(ctx, append(append([]string{}, base...), "migrate", "status"), &stdout, &stderr)
	if code != 0 || strings.Contains(stdout.String(), " no\n") {
		t.Errorf("migrate status after the bad input: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}

// TestHelpExitsZero: asking for help is not an error.
func TestHelpExitsZero(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"-h"}, {"-help"}} {
		var stdout, stderr bytes.Buffer
		if code := cli.Run(context.Background(), args, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "Usage") {
			t.Errorf("acidic %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr.String())
		}
	}
}
