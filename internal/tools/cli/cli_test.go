package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/enginetest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/internal/tools/cli"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

// TestBadInputGetsAClearErrorAndChangesNothing drives the acidic command with
// malformed arguments, extra arguments, unknown IDs, unmigrated schemas and
// unreachable databases: each exits with its documented status (2 usage, 1
// failure, 4 not found, 5 not migrated) and a message on stderr that says
// what was wrong, prints nothing on stdout, and changes no row of runs, jobs
// or run_steps.
func TestBadInputGetsAClearErrorAndChangesNothing(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: it fingerprints the tables with PostgreSQL SQL (md5, string_agg) and drops a schema by name.
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
	// A schema with only its first three migrations.
	half := testdb.New(t, testdb.Options{MaxConns: 2})
	halfSchema := half.Schema()
	if _, err := half.Migrator().Down(ctx, 3); err != nil {
		t.Fatal(err)
	}

	type tc struct {
		name    string
		args    []string
		code    int
		mention string // stderr must contain this
	}
	usage := []tc{
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"unknown global flag", []string{"-nope", "queues"}, 2, "-nope"},
		{"unknown global flag after the command", []string{"queues", "-nope"}, 2, "-nope"},
		{"jobs without a subcommand", []string{"jobs"}, 2, "jobs needs list, get, retry or cancel"},
		{"jobs list with a zero limit", []string{"jobs", "list", "-limit", "0"}, 2, "-limit must be at least 1"},
		{"runs list with a negative limit", []string{"runs", "list", "-limit", "-5"}, 2, "-limit must be at least 1"},
		{"runs list with an unknown state", []string{"runs", "list", "-state", "done"}, 2, `unknown state "done"`},
		{"jobs get without an id", []string{"jobs", "get"}, 2, "jobs get needs ID"},
		{"jobs get with two ids", []string{"jobs", "get", "1", "2"}, 2, `jobs get: unexpected argument "2"`},
		{"job id not a number", []string{"jobs", "get", "abc"}, 2, `job ID "abc"`},
		{"job id zero", []string{"jobs", "cancel", "0"}, 2, `job ID "0"`},
		{"job id negative", []string{"jobs", "retry", "-5"}, 2, "-5"},
		{"job id too large", []string{"jobs", "get", "99999999999999999999"}, 2, `job ID "99999999999999999999"`},
		{"unknown jobs subcommand", []string{"jobs", "frob", "1"}, 2, `unknown jobs command "frob"`},
		{"unknown job state", []string{"jobs", "list", "-state", "running,bogus"}, 2, `unknown state "bogus"`},
		{"job list limit not a number", []string{"jobs", "list", "-limit", "x"}, 2, "jobs list"},
		{"unknown jobs list flag", []string{"jobs", "list", "-colour", "red"}, 2, "jobs list"},
		{"jobs retry without an id or a filter", []string{"jobs", "retry"}, 2, "needs a job ID or a filter"},
		{"jobs retry with an id and a filter", []string{"jobs", "retry", "1", "-queue", "parked"}, 2, "not both"},
		{"jobs retry with an unknown state", []string{"jobs", "retry", "-state", "bogus"}, 2, `unknown state "bogus"`},
		{"run id not a UUID", []string{"runs", "get", "not-a-uuid"}, 2, `run ID "not-a-uuid" is not a UUID`},
		{"run id a number", []string{"runs", "cancel", "123"}, 2, `run ID "123" is not a UUID`},
		{"runs without a subcommand", []string{"runs"}, 2, "runs needs list, get, retry or cancel"},
		{"unknown run state", []string{"runs", "list", "-state", "finished"}, 2, `unknown state "finished"`},
		{"job state given for runs", []string{"runs", "list", "-state", "discarded"}, 2, `unknown state "discarded"`},
		{"unknown runs subcommand", []string{"runs", "frob", unknownRun}, 2, `unknown runs command "frob"`},
		{"runs retry without an id or a filter", []string{"runs", "retry"}, 2, "needs a run ID or a filter"},
		{"runs retry with an id and a filter", []string{"runs", "retry", unknownRun, "-workflow", "cli"}, 2, "not both"},
		{"runs retry with a job state", []string{"runs", "retry", "-state", "discarded"}, 2, `unknown state "discarded"`},
		{"migrate without a subcommand", []string{"migrate"}, 2, "migrate needs up, down or status"},
		{"unknown migrate subcommand", []string{"migrate", "sideways"}, 2, `unknown migrate command "sideways"`},
		{"migrate down without a version", []string{"migrate", "down"}, 2, "migrate down needs VERSION"},
		{"migrate down with a version that is not a number", []string{"migrate", "down", "x"}, 2, `version "x" is not a number`},
		{"migrate down to an unknown version", []string{"migrate", "down", "99"}, 2, "unknown version 99"},
		{"migrate down to a negative version", []string{"migrate", "down", "--", "-1"}, 2, "unknown version -1"},
		{"an empty schema", []string{"-schema", "", "queues"}, 2, "-schema is empty"},
		{"an empty database", []string{"-database", "", "queues"}, 2, "-database is empty"},
		{"a malformed database URL", []string{"-database", "postgres://[::1", "jobs", "list"}, 2, "-database is not a valid PostgreSQL connection string"},
		{"help for an unknown command", []string{"help", "frob"}, 2, `unknown command "frob"`},
		// Extra positional arguments are refused, not ignored.
		{"queues with an argument", []string{"queues", "x"}, 2, `queues: unexpected argument "x"`},
		{"runs list with arguments", []string{"runs", "list", "a", "b"}, 2, `runs list: unexpected argument "a" "b"`},
		{"jobs list with an argument", []string{"jobs", "list", "-queue", "parked", "x"}, 2, `jobs list: unexpected argument "x"`},
		{"migrate up with an argument", []string{"migrate", "up", "x"}, 2, `migrate up: unexpected argument "x"`},
		{"migrate status with an argument", []string{"migrate", "status", "now"}, 2, `migrate status: unexpected argument "now"`},
		{"migrate down with two versions", []string{"migrate", "down", "1", "2"}, 2, `migrate down: unexpected argument "2"`},
		{"runs get with two ids", []string{"runs", "get", unknownRun, unknownRun}, 2, "runs get: unexpected argument"},
		{"runs cancel with an extra argument", []string{"runs", "cancel", unknownRun, "now"}, 2, `runs cancel: unexpected argument "now"`},
	}
	operation := []tc{
		{"get an unknown job", []string{"jobs", "get", unknownJob}, 4, "job " + unknownJob + " not found in schema " + drv.Schema()},
		{"cancel an unknown job", []string{"jobs", "cancel", unknownJob}, 4, "not found"},
		{"retry an unknown job", []string{"jobs", "retry", unknownJob}, 4, "not found"},
		{"get an unknown run", []string{"runs", "get", unknownRun}, 4, "run " + unknownRun + " not found in schema " + drv.Schema()},
		{"retry an unknown run", []string{"runs", "retry", unknownRun}, 4, "not found"},
		{"cancel an unknown run", []string{"runs", "cancel", unknownRun}, 4, "not found"},
		{"retry a succeeded run", []string{"runs", "retry", done.Run.ID.String()}, 1, "cannot be retried"},
		{"a database that does not answer", []string{"-database", deadURL, "queues"}, 1, "127.0.0.1"},
		{"a schema that was never migrated", []string{"-schema", missingSchema, "queues"}, 5,
			`schema "` + missingSchema + `" is not migrated (run: acidic -schema ` + missingSchema + ` migrate up)`},
		{"jobs of a schema that was never migrated", []string{"-schema", missingSchema, "jobs", "get", "1"}, 5, "is not migrated"},
		{"runs of a schema that was never migrated", []string{"runs", "list", "-schema", missingSchema}, 5, "is not migrated"},
		{"a schema migrated half way", []string{"-schema", halfSchema, "runs", "list"}, 5,
			`schema "` + halfSchema + `" has 3 of ` + fmt.Sprint(half.Migrator().Latest()) + ` migrations applied (run: acidic -schema ` + halfSchema + ` migrate up)`},
	}

	base := dbFlags(drv)
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
				code = cli.Run(ctx, append(slices.Clone(base), c.args...), &stdout, &stderr)
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
	code = cli.Run(ctx, append(slices.Clone(base), "migrate", "status"), &stdout, &stderr)
	if code != 0 || strings.Contains(stdout.String(), " no\n") {
		t.Errorf("migrate status after the bad input: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}

// TestHelpGoesToStdoutAndExitsZero: asking for help is not an error, and the
// help lists the exit statuses; a call without a command is one.
func TestHelpGoesToStdoutAndExitsZero(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, args := range [][]string{{"help"}, {"-h"}, {"-help"}, {"--help"}} {
		r := runCLI(ctx, nil, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") || r.stderr != "" {
			t.Errorf("acidic %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		for _, want := range []string{"Exit status:", "0  success", "2  usage", "4  not found", "5  the schema is not migrated", "DATABASE_URL", "ACIDIC_SCHEMA"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("acidic %s: the help does not say %q", strings.Join(args, " "), want)
			}
		}
	}
	// One command's or one group's help, however asked for.
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"help", "runs", "retry"}, []string{"runs retry ID", "runs retry [-state S] [-workflow W]", "-workflow workflow", "Global flags"}},
		{[]string{"runs", "retry", "-h"}, []string{"runs retry ID", "-state states"}},
		{[]string{"runs", "-h"}, []string{"runs list", "runs get ID", "runs cancel ID"}},
		{[]string{"help", "jobs"}, []string{"jobs list", "jobs retry [-state S] [-queue Q] [-kind K]"}},
		{[]string{"jobs", "list", "--help"}, []string{"-limit N", "(default 100)"}},
		{[]string{"help", "bench"}, []string{"acidic bench measures"}},
	} {
		r := runCLI(ctx, nil, c.args...)
		out := r.stdout + r.stderr
		if r.code != 0 {
			t.Errorf("acidic %s: exit %d\n%s", strings.Join(c.args, " "), r.code, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("acidic %s: the help does not say %q:\n%s", strings.Join(c.args, " "), w, out)
			}
		}
	}
	r := runCLI(ctx, nil)
	if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "no command given") || !strings.Contains(r.stderr, "Usage:") {
		t.Errorf("acidic without a command: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

// jobRow is what a jobs table shows of a job.
func jobRow(j *acidic.Job) []string {
	return []string{fmt.Sprint(j.ID), j.Queue, j.Kind, string(j.State), fmt.Sprintf("%d/%d", j.Attempt, j.MaxAttempts), j.ScheduledAt.Format(time.RFC3339)}
}

func runRow(r *acidic.Run) []string {
	rp := r.RecoveryPoint
	if rp == "" {
		rp = "-"
	}
	return []string{r.ID.String(), r.Workflow, string(r.State), rp, r.IdempotencyKey, r.UpdatedAt.Format(time.RFC3339)}
}

// hasFields reports whether row starts with the fields want.
func hasFields(row []string, want ...string) bool {
	return len(row) >= len(want) && slices.Equal(row[:len(want)], want)
}

// checkJobTable checks that a jobs table lists exactly want, in order.
func checkJobTable(t *testing.T, what, out string, want []*acidic.Job) {
	t.Helper()
	rows := table(t, out, "ID QUEUE KIND STATE ATTEMPT SCHEDULED LAST ERROR")
	columns(t, what, out)
	if len(rows) != len(want) {
		t.Errorf("%s: %d rows, want %d\n%s", what, len(rows), len(want), out)
		return
	}
	for i, j := range want {
		if !hasFields(rows[i], jobRow(j)...) {
			t.Errorf("%s: row %d is %q, want %q\n%s", what, i, rows[i], jobRow(j), out)
		}
		if n := len(j.Errors); n > 0 && !strings.Contains(strings.Join(rows[i], " "), j.Errors[n-1].Error) {
			t.Errorf("%s: row %d does not show the last error %q\n%s", what, i, j.Errors[n-1].Error, out)
		}
	}
}

// checkJobDetail checks the text of jobs get (retry, cancel) against j.
func checkJobDetail(t *testing.T, what, out string, j *acidic.Job) {
	t.Helper()
	f, rest := detail(t, out)
	want := map[string]string{
		"job": fmt.Sprint(j.ID), "queue": j.Queue, "kind": j.Kind, "state": string(j.State),
		"attempt": fmt.Sprintf("%d of %d", j.Attempt, j.MaxAttempts), "scheduled": j.ScheduledAt.Format(time.RFC3339),
		"created": j.CreatedAt.Format(time.RFC3339), "args": compactJSON(t, j.Args),
	}
	if j.RunID != uuid.Nil {
		want["run"] = j.RunID.String()
	}
	for k, v := range want {
		got := f[k]
		if k == "args" {
			got = compactJSON(t, []byte(got))
		}
		if got != v {
			t.Errorf("%s: %s is %q, want %q\n%s", what, k, got, v, out)
		}
	}
	if n := len(j.Errors); n > 0 {
		errs := table(t, rest, "ATTEMPT AT ERROR")
		if len(errs) < n || !strings.Contains(rest, "last error      "+j.Errors[n-1].Error) {
			t.Errorf("%s: the error history does not show %d errors ending in %q\n%s", what, n, j.Errors[n-1].Error, out)
		}
	} else if rest != "" {
		t.Errorf("%s: more than the job's fields:\n%s", what, out)
	}
}

func compactJSON(t *testing.T, raw []byte) string {
	t.Helper()
	if len(raw) == 0 {
		return "null"
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("compact %q: %v", raw, err)
	}
	return b.String()
}

// checkRunTable checks that a runs table lists exactly want, in order.
func checkRunTable(t *testing.T, what, out string, want []*acidic.Run) {
	t.Helper()
	rows := table(t, out, "ID WORKFLOW STATE RECOVERY POINT KEY UPDATED ERROR")
	columns(t, what, out)
	if len(rows) != len(want) {
		t.Errorf("%s: %d rows, want %d\n%s", what, len(rows), len(want), out)
		return
	}
	for i, r := range want {
		if !hasFields(rows[i], runRow(r)...) {
			t.Errorf("%s: row %d is %q, want %q\n%s", what, i, rows[i], runRow(r), out)
		}
		if r.Error != "" && !strings.Contains(strings.Join(rows[i], " "), strings.Join(strings.Fields(r.Error), " ")) {
			t.Errorf("%s: row %d does not show the error %q\n%s", what, i, r.Error, out)
		}
	}
}

// checkRunDetail checks the text of runs get (retry, cancel) against r:
// its fields, arguments, persisted state, result and step log.
func checkRunDetail(t *testing.T, what, out string, r *acidic.Run) {
	t.Helper()
	f, rest := detail(t, out)
	rp := r.RecoveryPoint
	if rp == "" {
		rp = "-"
	}
	want := map[string]string{
		"run": r.ID.String(), "workflow": r.Workflow, "state": string(r.State), "queue": r.Queue,
		"key": r.IdempotencyKey, "recovery point": rp, "created": r.CreatedAt.Format(time.RFC3339),
		"updated": r.UpdatedAt.Format(time.RFC3339), "definition": r.DefinitionHash,
		"args": compactJSON(t, r.Args), "attrs": compactJSON(t, r.Attrs), "result": compactJSON(t, r.Result),
	}
	if r.Error != "" {
		want["error"] = r.Error
	}
	for k, v := range want {
		got := f[k]
		if k == "args" || k == "attrs" || k == "result" {
			got = compactJSON(t, []byte(got))
		}
		if got != v {
			t.Errorf("%s: %s is %q, want %q\n%s", what, k, got, v, out)
		}
	}
	if r.FinishedAt != nil {
		took := r.FinishedAt.Sub(r.CreatedAt).Round(time.Millisecond).String()
		if w := r.FinishedAt.Format(time.RFC3339) + " (took " + took; !strings.HasPrefix(f["finished"], w) {
			t.Errorf("%s: finished is %q, want %q...", what, f["finished"], w)
		}
	}
	if len(r.Steps) == 0 {
		if rest != "no steps recorded yet\n" {
			t.Errorf("%s: after the fields %q, want no steps\n%s", what, rest, out)
		}
		return
	}
	steps, _, _ := strings.Cut(rest, "\n\n")
	rows := table(t, steps, "# STEP STATE ATTEMPT EXECUTIONS STARTED TOOK ERROR")
	columns(t, what, steps)
	if len(rows) != len(r.Steps) {
		t.Errorf("%s: %d step rows, want %d\n%s", what, len(rows), len(r.Steps), out)
		return
	}
	for i, s := range r.Steps {
		want := []string{fmt.Sprint(s.Position + 1), s.Name, string(s.State), fmt.Sprint(s.Attempt), fmt.Sprint(s.Executions),
			s.StartedAt.Format(time.RFC3339), s.FinishedAt.Sub(s.StartedAt).Round(time.Microsecond).String()}
		if d := s.FinishedAt.Sub(s.StartedAt); d >= time.Millisecond {
			want[6] = d.Round(time.Millisecond).String()
		}
		if !hasFields(rows[i], want...) {
			t.Errorf("%s: step row %d is %q, want %q\n%s", what, i, rows[i], want, out)
		}
		if s.Error != "" && !strings.Contains(out, fmt.Sprintf("step %d %s\n  error         %s\n", s.Position+1, s.Name, s.Error)) {
			t.Errorf("%s: the error of step %d (%q) is not shown in full\n%s", what, i, s.Error, out)
		}
	}
}

func timeOrNil(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	return t
}

func sameTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func sameStr(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// sameJSON reports whether got and want hold the same JSON value (an empty
// want is null).
func sameJSON(t *testing.T, got json.RawMessage, want []byte) bool {
	t.Helper()
	if len(want) == 0 {
		return got == nil || string(got) == "null"
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("decode %q: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("decode %q: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

// checkJobs checks jobs decoded from -json output against the database's.
func checkJobs(t *testing.T, what string, got []cli.JobJSON, want []*acidic.Job) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d jobs, want %d", what, len(got), len(want))
		return
	}
	for i, w := range want {
		g := got[i]
		runID := strOrNil(w.RunID.String())
		if w.RunID == uuid.Nil {
			runID = nil
		}
		if g.ID != w.ID || g.Queue != w.Queue || g.Kind != w.Kind || g.State != string(w.State) || !sameStr(g.RunID, runID) ||
			g.Priority != w.Priority || g.Attempt != w.Attempt || g.MaxAttempts != w.MaxAttempts || !g.ScheduledAt.Equal(w.ScheduledAt) ||
			!sameTime(g.AttemptedAt, timeOrNil(w.AttemptedAt)) || !sameStr(g.AttemptedBy, strOrNil(w.AttemptedBy)) ||
			!sameTime(g.FinalizedAt, timeOrNil(w.FinalizedAt)) || !g.CreatedAt.Equal(w.CreatedAt) || !sameJSON(t, g.Args, w.Args) ||
			g.Errors == nil || g.DependsOn == nil ||
			!slices.EqualFunc(g.Errors, w.Errors, func(a cli.AttemptErrorJSON, b acidic.AttemptError) bool {
				return a.Attempt == b.Attempt && a.Error == b.Error && a.At.Equal(b.At)
			}) {
			t.Errorf("%s: job %d is\n%+v\nwant\n%+v", what, i, g, *w)
		}
	}
}

// checkRun checks a run decoded from -json output against the database's.
func checkRun(t *testing.T, what string, g cli.RunJSON, w *acidic.Run) {
	t.Helper()
	parent := strOrNil(w.ParentRunID.String())
	if w.ParentRunID == uuid.Nil {
		parent = nil
	}
	if g.ID != w.ID.String() || g.Workflow != w.Workflow || g.State != string(w.State) || g.Queue != w.Queue ||
		!sameStr(g.RecoveryPoint, strOrNil(w.RecoveryPoint)) || g.IdempotencyKey != w.IdempotencyKey ||
		!sameStr(g.Error, strOrNil(w.Error)) || !sameStr(g.ParentRunID, parent) || !sameStr(g.ParentStep, strOrNil(w.ParentStep)) ||
		!sameStr(g.LockedBy, strOrNil(w.LockedBy)) || !sameStr(g.DefinitionHash, strOrNil(w.DefinitionHash)) ||
		!g.CreatedAt.Equal(w.CreatedAt) || !g.UpdatedAt.Equal(w.UpdatedAt) || !sameTime(g.FinishedAt, timeOrNil(w.FinishedAt)) ||
		!sameTime(g.LastRunAt, timeOrNil(w.LastRunAt)) || g.Cursor != w.Cursor || g.Awaiting != w.Awaiting ||
		!sameJSON(t, g.Args, w.Args) || !sameJSON(t, g.Attrs, w.Attrs) || !sameJSON(t, g.Result, w.Result) {
		t.Errorf("%s: run is\n%+v\nwant\n%+v", what, g, *w)
	}
}

// checkRuns checks runs decoded from -json output (runs list).
func checkRuns(t *testing.T, what string, got []cli.RunJSON, want []*acidic.Run) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d runs, want %d", what, len(got), len(want))
		return
	}
	for i, w := range want {
		checkRun(t, fmt.Sprintf("%s: run %d", what, i), got[i], w)
	}
}

// checkRunDetailJSON checks runs get -json: the run and its step log.
func checkRunDetailJSON(t *testing.T, what string, g cli.RunDetailJSON, w *acidic.Run) {
	t.Helper()
	checkRun(t, what, g.RunJSON, w)
	if g.Steps == nil || !slices.EqualFunc(g.Steps, w.Steps, func(a cli.StepJSON, b acidic.Step) bool {
		return a.Position == b.Position+1 && a.Name == b.Name && a.State == string(b.State) &&
			a.Attempt == b.Attempt && a.Executions == b.Executions && sameStr(a.Error, strOrNil(b.Error)) &&
			sameTime(a.StartedAt, timeOrNil(&b.StartedAt)) && sameTime(a.FinishedAt, timeOrNil(&b.FinishedAt)) && sameJSON(t, a.Result, b.Result)
	}) {
		t.Errorf("%s: the step log is\n%+v\nwant\n%+v", what, g.Steps, w.Steps)
	}
}

// TestCommandsShowWhatIsInTheDatabase runs every command of the usage text
// that succeeds, as text and as JSON, against a schema holding a succeeded
// run, a failed run, pending runs and plain jobs, and checks that what each
// prints is what the database holds, and that retry and cancel changed the
// rows they name.
func TestCommandsShowWhatIsInTheDatabase(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: it migrates unmigrated PostgreSQL schemas step by step (-schema); TestSQLiteDatabase covers migrate on a SQLite file.
	drv := testdb.New(t, testdb.Options{MaxConns: 4, Unmigrated: true})
	fresh := testdb.New(t, testdb.Options{MaxConns: 2, Unmigrated: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := shell{t: t, ctx: ctx, base: dbFlags(drv)}
	b := shell{t: t, ctx: ctx, base: []string{"-database", testdb.URL(), "-schema", fresh.Schema()}}

	var versions []int
	var vtext []string
	for _, m := range drv.Migrator().Migrations() {
		versions = append(versions, m.Version)
		vtext = append(vtext, fmt.Sprint(m.Version))
	}
	latest := versions[len(versions)-1]

	// migrate up applies every migration to an empty schema, and then has
	// nothing left to do.
	if out, want := a.text("migrate", "up"), fmt.Sprintf("applied %s to schema %s (now at version %d)\n", strings.Join(vtext, ", "), drv.Schema(), latest); out != want {
		t.Errorf("migrate up printed %q, want %q", out, want)
	}
	var up cli.MigrateUpJSON
	if out := a.json(&up, "migrate", "up"); up.Schema != drv.Schema() || up.Applied == nil || len(up.Applied) != 0 || !strings.Contains(out, `"applied": []`) {
		t.Errorf("migrate up -json on a migrated schema: %s, want an empty applied list", out)
	}
	up = cli.MigrateUpJSON{}
	b.json(&up, "migrate", "up")
	if !slices.Equal(up.Applied, versions) {
		t.Errorf("migrate up -json applied %v, want %v", up.Applied, versions)
	}
	if out, want := b.text("migrate", "up"), fmt.Sprintf("schema %s is up to date (version %d)\n", fresh.Schema(), latest); out != want {
		t.Errorf("migrate up printed %q, want %q", out, want)
	}
	for _, d := range []*postgres.Driver{drv, fresh} {
		st, err := d.Migrator().Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st {
			if !s.Applied {
				t.Errorf("schema %s: migration %d not applied after migrate up", d.Schema(), s.Version)
			}
		}
	}
	// migrate down and up again on the fresh schema.
	var down cli.MigrateDownJSON
	b.json(&down, "migrate", "down", "0")
	if slices.Reverse(down.Reverted); !slices.Equal(down.Reverted, versions) {
		t.Errorf("migrate down 0 -json reverted %v, want %v", down.Reverted, versions)
	}
	if out, want := b.text("migrate", "down", "0"), fmt.Sprintf("schema %s has nothing above version 0 to revert\n", fresh.Schema()); out != want {
		t.Errorf("migrate down 0 again printed %q, want %q", out, want)
	}

	// migrate status lists each migration with when it was applied.
	st, err := drv.Migrator().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != len(versions) {
		t.Fatalf("status has %d migrations, want %d", len(st), len(versions))
	}
	out := a.text("migrate", "status")
	rows := table(t, out, "VERSION NAME APPLIED")
	if len(rows) != len(st) {
		t.Errorf("migrate status: %d rows, want %d\n%s", len(rows), len(st), out)
	} else {
		for i, s := range st {
			if want := []string{fmt.Sprint(s.Version), s.Name, s.AppliedAt.Format(time.RFC3339)}; !slices.Equal(rows[i], want) {
				t.Errorf("migrate status: row %d is %q, want %q", i, rows[i], want)
			}
		}
	}
	var status []cli.MigrationJSON
	a.json(&status, "migrate", "status")
	if len(status) != len(st) {
		t.Errorf("migrate status -json: %d migrations, want %d", len(status), len(st))
	} else {
		for i, s := range st {
			g := status[i]
			if g.Version != s.Version || g.Name != s.Name || !g.Applied || g.AppliedAt == nil || !g.AppliedAt.Equal(s.AppliedAt) {
				t.Errorf("migrate status -json: migration %d is %+v, want %d %q at %s", i, g, s.Version, s.Name, s.AppliedAt)
			}
		}
	}
	status = nil
	b.json(&status, "migrate", "status")
	if len(status) != len(st) || status[0].Applied || status[0].AppliedAt != nil {
		t.Errorf("migrate status -json of a reverted schema: %+v, want nothing applied (applied_at null)", status)
	}

	// Empty lists: [] in JSON, a sentence in text.
	for _, args := range [][]string{{"jobs", "list"}, {"runs", "list"}, {"queues"}} {
		if out := a.text(append([]string{"-json"}, args...)...); out != "[]\n" {
			t.Errorf("%s -json on an empty schema printed %q, want []", strings.Join(args, " "), out)
		}
		if out := a.text(args...); !strings.HasPrefix(out, "no ") || !strings.Contains(out, drv.Schema()) {
			t.Errorf("%s on an empty schema printed %q", strings.Join(args, " "), out)
		}
	}

	// The rows to show: a run that succeeded with two steps, a run that
	// failed at its second step (and its discarded job), two pending runs
	// and three plain jobs on queues nobody works, one of them cancelled.
	type payArgs struct {
		Order string `json:"order"`
		Cents int    `json:"cents"`
	}
	type payState struct {
		Charge string `json:"charge"`
	}
	ok := workflow.Define("cli_ok", workflow.Options{},
		steps.Do("first", func(_ context.Context, sc *steps.Context[payArgs, payState]) error {
			sc.State.Charge = "ch_" + sc.Args.Order
			return nil
		}),
		steps.Do("second", func(context.Context, *steps.Context[payArgs, payState]) error { return nil }))
	fail := workflow.Define("cli_fail", workflow.Options{MaxAttempts: 1},
		steps.Do("prepare", func(context.Context, *steps.Context[struct{}, struct{}]) error { return nil }),
		steps.Do("charge", func(context.Context, *steps.Context[struct{}, struct{}]) error { return errors.New("card declined") }))
	eng := enginetest.New(t, drv, enginetest.Config(1), ok, fail)
	n := 0
	enqueue := func(name, q string) uuid.UUID {
		t.Helper()
		n++
		var args any = payArgs{Order: fmt.Sprint("o-", n), Cents: 100 * n}
		if name == "cli_fail" {
			args = struct{}{}
		}
		res, err := eng.Enqueue(ctx, name, args, workflow.EnqueueOptions{Queue: q})
		if err != nil {
			t.Fatal(err)
		}
		return res.Run.ID
	}
	doneID := enqueue("cli_ok", "")
	failedID := enqueue("cli_fail", "")
	if _, err := eng.Queue().Drain(ctx, queue.DefaultQueue, queue.DrainOptions{}); err != nil {
		t.Fatal(err)
	}
	parked1 := enqueue("cli_ok", "parked")
	parked2 := enqueue("cli_ok", "parked")
	client := eng.Queue()
	newJob := func(kind, q string) int64 {
		t.Helper()
		j, err := client.Enqueue(ctx, kind, map[string]int{"n": 1}, queue.EnqueueOptions{Queue: q})
		if err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	plainID := newJob("plain", "parked")
	reportID := newJob("report", "mail")
	spareID := newJob("plain", "mail")
	if _, err := client.Cancel(ctx, reportID); err != nil {
		t.Fatal(err)
	}

	getRun := func(id uuid.UUID) *acidic.Run {
		t.Helper()
		r, err := eng.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	getJob := func(id int64) *acidic.Job {
		t.Helper()
		j, err := client.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	listJobs := func(f acidic.JobFilter) []*acidic.Job {
		t.Helper()
		js, err := client.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	listRuns := func(f acidic.RunFilter) []*acidic.Run {
		t.Helper()
		rs, err := eng.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	ids := func(js []*acidic.Job) []int64 {
		var out []int64
		for _, j := range js {
			out = append(out, j.ID)
		}
		return out
	}

	done, failed := getRun(doneID), getRun(failedID)
	if done.State != acidic.RunSucceeded || len(done.Steps) != 2 || !strings.Contains(string(done.Attrs), "ch_o-1") {
		t.Fatalf("set-up: run cli_ok is %s with %d steps and state %s, want succeeded with 2 and a charge", done.State, len(done.Steps), done.Attrs)
	}
	if failed.State != acidic.RunFailed || failed.RecoveryPoint != "charge" || len(failed.Steps) != 2 || failed.Steps[1].State != acidic.StepFailed {
		t.Fatalf("set-up: run cli_fail is %s at %q with steps %+v, want failed at charge", failed.State, failed.RecoveryPoint, failed.Steps)
	}
	failedJobs := listJobs(acidic.JobFilter{RunID: failedID})
	if len(failedJobs) != 1 || failedJobs[0].State != acidic.JobDiscarded || len(failedJobs[0].Errors) == 0 {
		t.Fatalf("set-up: jobs of the failed run: %+v, want one discarded with an error", failedJobs)
	}
	failedJob := failedJobs[0]

	// queues counts the jobs by queue and state.
	stats, err := drv.JobStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) < 4 {
		t.Fatalf("set-up: job stats %+v, want at least 4 queue/state pairs", stats)
	}
	ages, err := drv.JobQueueAges(ctx, storage.JobQueueAgesParams{})
	if err != nil || len(ages) == 0 {
		t.Fatalf("set-up: queue ages %+v, %v; want some queue with available jobs", ages, err)
	}
	out = a.text("queues")
	out, agesOut, _ := strings.Cut(out, "\n\n")
	rows = table(t, out, "QUEUE STATE JOBS OLDEST DUE")
	columns(t, "queues", out)
	// Then the queues with available jobs, and how long the oldest waited.
	ageRows := table(t, agesOut, "QUEUE AVAILABLE OLDEST AVAILABLE FOR")
	columns(t, "queues (ages)", agesOut)
	if len(ageRows) != len(ages) {
		t.Errorf("queues: %d rows of ages, want %d\n%s", len(ageRows), len(ages), agesOut)
	} else {
		for i, g := range ages {
			if r := ageRows[i]; len(r) != 3 || r[0] != g.Queue || r[1] != fmt.Sprint(g.Available) {
				t.Errorf("queues: age row %d is %q, want %s with %d available", i, r, g.Queue, g.Available)
			} else if d, err := time.ParseDuration(r[2]); err != nil || d < 0 || d > g.OldestAge+time.Minute {
				t.Errorf("queues: age row %d: %q is not an age near %s", i, r[2], g.OldestAge)
			}
		}
	}
	if len(rows) != len(stats) {
		t.Errorf("queues: %d rows, want %d\n%s", len(rows), len(stats), out)
	} else {
		for i, s := range stats {
			want := []string{s.Queue, string(s.State), fmt.Sprint(s.Count), "-"}
			if s.OldestDue != nil {
				want[3] = s.OldestDue.Format(time.RFC3339)
			}
			if !slices.Equal(rows[i], want) {
				t.Errorf("queues: row %d is %q, want %q", i, rows[i], want)
			}
		}
	}
	var gotStats []cli.QueueJSON
	a.json(&gotStats, "queues")
	if len(gotStats) != len(stats) {
		t.Errorf("queues -json: %d rows, want %d", len(gotStats), len(stats))
	} else {
		for i, s := range stats {
			g := gotStats[i]
			if g.Queue != s.Queue || g.State != string(s.State) || g.Count != s.Count || !sameTime(g.OldestDue, s.OldestDue) {
				t.Errorf("queues -json: row %d is %+v, want %+v", i, g, s)
			}
		}
	}
	aged := map[string]bool{}
	for _, g := range ages {
		aged[g.Queue] = true
	}
	for _, s := range gotStats {
		if got := s.OldestAvailableAge; (got != nil) != aged[s.Queue] || (got != nil && *got < 0) {
			t.Errorf("queues -json: queue %s (%s): oldest_available_age_seconds %v; want a positive age exactly when it has available jobs", s.Queue, s.State, got)
		}
	}
	parkedAvailable := 0
	for _, s := range gotStats {
		if s.Queue == "parked" && s.State == string(acidic.JobAvailable) {
			parkedAvailable = int(s.Count)
		}
	}
	if parkedAvailable != 3 {
		t.Errorf("queues -json: %d available jobs on parked, want 3 (two runs' and one plain)", parkedAvailable)
	}

	// jobs list, with each of its flags.
	allJobs := listJobs(acidic.JobFilter{})
	if len(allJobs) != 7 {
		t.Fatalf("set-up: %d jobs, want 7", len(allJobs))
	}
	for _, c := range []struct {
		args []string
		want []*acidic.Job
	}{
		{nil, allJobs},
		{[]string{"-state", "available", "-queue", "parked", "-kind", "plain"}, []*acidic.Job{getJob(plainID)}},
		{[]string{"-state", "cancelled, discarded"}, listJobs(acidic.JobFilter{States: []acidic.JobState{acidic.JobCancelled, acidic.JobDiscarded}})},
		{[]string{"-queue", "mail"}, []*acidic.Job{getJob(reportID), getJob(spareID)}},
		{[]string{"-limit", "2"}, allJobs[:2]},
		{[]string{"-queue", "nobody"}, nil},
	} {
		args := append([]string{"jobs", "list"}, c.args...)
		what := strings.Join(args, " ")
		if c.want != nil {
			checkJobTable(t, what, a.text(args...), c.want)
		}
		var got []cli.JobJSON
		a.json(&got, args...)
		checkJobs(t, what+" -json", got, c.want)
	}
	if got := ids(listJobs(acidic.JobFilter{States: []acidic.JobState{acidic.JobCancelled, acidic.JobDiscarded}})); !slices.Equal(got, []int64{failedJob.ID, reportID}) {
		t.Fatalf("set-up: cancelled and discarded jobs %v, want %v", got, []int64{failedJob.ID, reportID})
	}

	// jobs get: a plain job, and the failed run's job with its error.
	for _, id := range []int64{plainID, failedJob.ID} {
		want := getJob(id)
		what := fmt.Sprintf("jobs get %d", id)
		checkJobDetail(t, what, a.text("jobs", "get", fmt.Sprint(id)), want)
		var got cli.JobJSON
		a.json(&got, "jobs", "get", fmt.Sprint(id))
		checkJobs(t, what+" -json", []cli.JobJSON{got}, []*acidic.Job{want})
	}
	if !strings.Contains(failedJob.Errors[len(failedJob.Errors)-1].Error, "card declined") {
		t.Errorf("the failed run's job has the errors %+v, want card declined", failedJob.Errors)
	}

	// runs list, with each of its flags.
	allRuns := listRuns(acidic.RunFilter{})
	if got := []uuid.UUID{allRuns[0].ID, allRuns[1].ID, allRuns[2].ID, allRuns[3].ID}; len(allRuns) != 4 || !slices.Equal(got, []uuid.UUID{doneID, failedID, parked1, parked2}) {
		t.Fatalf("set-up: runs %v, want %v", got, []uuid.UUID{doneID, failedID, parked1, parked2})
	}
	for _, c := range []struct {
		args []string
		want []*acidic.Run
	}{
		{nil, allRuns},
		{[]string{"-state", "failed"}, allRuns[1:2]},
		{[]string{"-workflow", "cli_ok", "-state", "pending,running"}, allRuns[2:]},
		{[]string{"-workflow", "cli_fail"}, allRuns[1:2]},
		{[]string{"-limit", "1"}, allRuns[:1]},
	} {
		args := append([]string{"runs", "list"}, c.args...)
		what := strings.Join(args, " ")
		checkRunTable(t, what, a.text(args...), c.want)
		var got []cli.RunJSON
		a.json(&got, args...)
		checkRuns(t, what+" -json", got, c.want)
	}

	// runs get shows the run in full with its step log: both steps of the
	// succeeded run, its arguments and state; the failed run's failed step
	// with its error.
	for _, r := range []*acidic.Run{done, failed} {
		what := "runs get " + r.ID.String()
		checkRunDetail(t, what, a.text("runs", "get", r.ID.String()), r)
		var got cli.RunDetailJSON
		a.json(&got, "runs", "get", r.ID.String())
		checkRunDetailJSON(t, what+" -json", got, r)
	}
	if names := []string{done.Steps[0].Name, done.Steps[1].Name}; !slices.Equal(names, []string{"first", "second"}) {
		t.Errorf("succeeded run's step log %v, want first, second", names)
	}
	if s := failed.Steps[1]; s.Name != "charge" || !strings.Contains(s.Error, "card declined") {
		t.Errorf("failed run's second step %+v, want charge failing with card declined", s)
	}

	// jobs cancel and jobs retry change the job they name and print it as
	// it is now.
	jobCommand := func(cmd string, id int64, asJSON bool, want acidic.JobState) {
		t.Helper()
		what := fmt.Sprintf("jobs %s %d (json %v)", cmd, id, asJSON)
		var got cli.JobJSON
		var text string
		if asJSON {
			a.json(&got, "jobs", cmd, fmt.Sprint(id))
		} else {
			text = a.text("jobs", cmd, fmt.Sprint(id))
		}
		now := getJob(id)
		if now.State != want {
			t.Errorf("%s: job is %s in the database, want %s", what, now.State, want)
		}
		if asJSON {
			checkJobs(t, what, []cli.JobJSON{got}, []*acidic.Job{now})
		} else {
			checkJobDetail(t, what, text, now)
		}
	}
	jobCommand("cancel", plainID, false, acidic.JobCancelled)
	jobCommand("retry", plainID, true, acidic.JobAvailable)
	jobCommand("retry", reportID, false, acidic.JobAvailable)
	jobCommand("cancel", spareID, true, acidic.JobCancelled)

	// runs retry and runs cancel change the run they name (and its jobs) and
	// print it as it is now, with its step log.
	runCommand := func(cmd string, id uuid.UUID, asJSON bool, want acidic.RunState, wantJob acidic.JobState) {
		t.Helper()
		what := fmt.Sprintf("runs %s %s (json %v)", cmd, id, asJSON)
		var got cli.RunDetailJSON
		var text string
		if asJSON {
			a.json(&got, "runs", cmd, id.String())
		} else {
			text = a.text("runs", cmd, id.String())
		}
		now := getRun(id)
		if now.State != want {
			t.Errorf("%s: run is %s in the database, want %s", what, now.State, want)
		}
		if asJSON {
			checkRunDetailJSON(t, what, got, now)
		} else {
			checkRunDetail(t, what, text, now)
		}
		// The jobs that execute the run (cancel also stages a finish job).
		jobs := listJobs(acidic.JobFilter{RunID: id, Kind: now.Workflow})
		if last := jobs[len(jobs)-1]; last.State != wantJob {
			t.Errorf("%s: the run's latest job %d is %s, want %s", what, last.ID, last.State, wantJob)
		}
	}
	runCommand("retry", failedID, false, acidic.RunPending, acidic.JobAvailable)
	if r := getRun(failedID); len(r.Steps) != 2 || r.RecoveryPoint != "charge" {
		t.Errorf("retried run at %q with %d steps, want at charge with its step log kept", r.RecoveryPoint, len(r.Steps))
	}
	runCommand("cancel", parked1, true, acidic.RunCancelled, acidic.JobCancelled)
	runCommand("retry", parked1, true, acidic.RunPending, acidic.JobAvailable)
	runCommand("cancel", parked2, false, acidic.RunCancelled, acidic.JobCancelled)

	// runs list sees what the commands did.
	var got []cli.RunJSON
	a.json(&got, "runs", "list")
	checkRuns(t, "runs list -json at the end", got, listRuns(acidic.RunFilter{}))
	if len(got) == 4 && (got[1].State != "pending" || got[2].State != "pending" || got[3].State != "cancelled") {
		t.Errorf("runs at the end: %s %s %s, want pending pending cancelled", got[1].State, got[2].State, got[3].State)
	}
}
