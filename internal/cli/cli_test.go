package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/acidic-go/acidic/internal/cli"
	"github.com/acidic-go/acidic/internal/enginetest"
	"github.com/acidic-go/acidic/internal/testdb"
	"github.com/acidic-go/acidic/migrations"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
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

// acidic runs the command in-process against one schema.
type acidic struct {
	t    *testing.T
	ctx  context.Context
	base []string // -database and -schema
}

// text runs the command and returns what it printed, failing the test unless
// it exited 0, printed something and wrote nothing on stderr.
func (a acidic) text(args ...string) string {
	a.t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Run(a.ctx, append(append([]string{}, a.base...), args...), &stdout, &stderr)
	if code != 0 || stderr.Len() > 0 || stdout.Len() == 0 {
		a.t.Fatalf("acidic %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// json runs the command with -json and decodes its output, one JSON value
// with no field v lacks, into v.
func (a acidic) json(v any, args ...string) {
	a.t.Helper()
	out := a.text(append([]string{"-json"}, args...)...)
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		a.t.Fatalf("acidic -json %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if dec.More() {
		a.t.Fatalf("acidic -json %s: more than one JSON value\n%s", strings.Join(args, " "), out)
	}
}

// table splits a table the command printed into rows of fields, after
// checking that its header starts with the given words.
func table(t *testing.T, out, header string) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if got := strings.Join(strings.Fields(lines[0]), " "); !strings.HasPrefix(got, header) {
		t.Fatalf("table header %q, want %q...\n%s", got, header, out)
	}
	var rows [][]string
	for _, l := range lines[1:] {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

// hasFields reports whether row starts with the fields want.
func hasFields(row []string, want ...string) bool {
	return len(row) >= len(want) && slices.Equal(row[:len(want)], want)
}

func jobFields(j *storage.Job) []string {
	return []string{fmt.Sprint(j.ID), j.Queue, j.Kind, string(j.State), fmt.Sprintf("%d/%d", j.Attempt, j.MaxAttempts), j.ScheduledAt.Format(time.RFC3339)}
}

func runFields(r *workflow.Run) []string {
	return []string{r.ID.String(), r.Workflow, string(r.State), r.RecoveryPoint, r.IdempotencyKey, r.UpdatedAt.Format(time.RFC3339)}
}

func stepFields(s storage.Step) []string {
	return []string{fmt.Sprint(s.Position + 1), s.Name, string(s.State), fmt.Sprint(s.Attempt), fmt.Sprint(s.Executions), s.FinishedAt.Format(time.RFC3339)}
}

// checkJobTable checks that a jobs table lists exactly want, in order.
func checkJobTable(t *testing.T, what, out string, want []*storage.Job) {
	t.Helper()
	rows := table(t, out, "ID QUEUE KIND STATE ATTEMPT SCHEDULED LAST ERROR")
	if len(rows) != len(want) {
		t.Errorf("%s: %d rows, want %d\n%s", what, len(rows), len(want), out)
		return
	}
	for i, j := range want {
		if !hasFields(rows[i], jobFields(j)...) {
			t.Errorf("%s: row %d is %q, want %q\n%s", what, i, rows[i], jobFields(j), out)
		}
		if n := len(j.Errors); n > 0 && !strings.Contains(strings.Join(rows[i], " "), j.Errors[n-1].Error) {
			t.Errorf("%s: row %d does not show the last error %q\n%s", what, i, j.Errors[n-1].Error, out)
		}
	}
}

// checkRunTable checks that a runs table lists exactly want, in order, and,
// when steps is set, that a step table follows it with each run's step log
// (one run).
func checkRunTable(t *testing.T, what, out string, want []*workflow.Run, steps bool) {
	t.Helper()
	runs, stepTable, hasSteps := strings.Cut(out, "\n\n")
	if hasSteps != steps {
		t.Errorf("%s: step table printed %v, want %v\n%s", what, hasSteps, steps, out)
	}
	rows := table(t, runs, "ID WORKFLOW STATE RECOVERY POINT KEY UPDATED ERROR")
	if len(rows) != len(want) {
		t.Errorf("%s: %d rows, want %d\n%s", what, len(rows), len(want), out)
		return
	}
	for i, r := range want {
		if !hasFields(rows[i], runFields(r)...) {
			t.Errorf("%s: row %d is %q, want %q\n%s", what, i, rows[i], runFields(r), out)
		}
		if r.Error != "" && !strings.Contains(strings.Join(rows[i], " "), strings.Join(strings.Fields(r.Error), " ")) {
			t.Errorf("%s: row %d does not show the error %q\n%s", what, i, r.Error, out)
		}
	}
	if !steps || !hasSteps {
		return
	}
	rows = table(t, stepTable, "# STEP STATE ATTEMPT EXECUTIONS FINISHED ERROR")
	log := want[0].Steps
	if len(rows) != len(log) {
		t.Errorf("%s: %d step rows, want %d\n%s", what, len(rows), len(log), out)
		return
	}
	for i, s := range log {
		if !hasFields(rows[i], stepFields(s)...) || !strings.Contains(strings.Join(rows[i], " "), s.Error) {
			t.Errorf("%s: step row %d is %q, want %q and error %q\n%s", what, i, rows[i], stepFields(s), s.Error, out)
		}
	}
}

// checkJobs checks jobs decoded from -json output against the database's.
func checkJobs(t *testing.T, what string, got []storage.Job, want []*storage.Job) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d jobs, want %d", what, len(got), len(want))
		return
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.ID || g.Queue != w.Queue || g.Kind != w.Kind || g.State != w.State || g.RunID != w.RunID ||
			g.Attempt != w.Attempt || g.MaxAttempts != w.MaxAttempts || !g.ScheduledAt.Equal(w.ScheduledAt) ||
			!slices.EqualFunc(g.Errors, w.Errors, func(a, b storage.AttemptError) bool { return a.Attempt == b.Attempt && a.Error == b.Error }) {
			t.Errorf("%s: job %d is\n%+v\nwant\n%+v", what, i, g, *w)
		}
	}
}

// checkRuns checks runs decoded from -json output, with their step logs,
// against the database's.
func checkRuns(t *testing.T, what string, got []workflow.Run, want []*workflow.Run) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d runs, want %d", what, len(got), len(want))
		return
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.ID || g.Workflow != w.Workflow || g.State != w.State || g.Queue != w.Queue ||
			g.RecoveryPoint != w.RecoveryPoint || g.IdempotencyKey != w.IdempotencyKey || g.Error != w.Error ||
			!g.UpdatedAt.Equal(w.UpdatedAt) {
			t.Errorf("%s: run %d is\n%+v\nwant\n%+v", what, i, g.Run, w.Run)
		}
		if !slices.EqualFunc(g.Steps, w.Steps, func(a, b storage.Step) bool {
			return a.RunID == b.RunID && a.Position == b.Position && a.Name == b.Name && a.State == b.State &&
				a.Attempt == b.Attempt && a.Executions == b.Executions && a.Error == b.Error && a.FinishedAt.Equal(b.FinishedAt)
		}) {
			t.Errorf("%s: run %d has the step log\n%+v\nwant\n%+v", what, i, g.Steps, w.Steps)
		}
	}
}

// TestCommandsShowWhatIsInTheDatabase runs every command of the usage text
// that succeeds, as a table and as JSON, against a schema holding a
// succeeded run, a failed run, pending runs and plain jobs, and checks that
// what each prints is what the database holds, and that retry and cancel
// changed the rows they name.
func TestCommandsShowWhatIsInTheDatabase(t *testing.T) {
	t.Parallel()
	drv := testdb.New(t, testdb.Options{MaxConns: 4, Unmigrated: true})
	fresh := testdb.New(t, testdb.Options{MaxConns: 2, Unmigrated: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := acidic{t: t, ctx: ctx, base: []string{"-database", testdb.URL(), "-schema", drv.Schema()}}
	b := acidic{t: t, ctx: ctx, base: []string{"-database", testdb.URL(), "-schema", fresh.Schema()}}

	var versions []int
	for _, m := range migrations.All() {
		versions = append(versions, m.Version)
	}
	latest := versions[len(versions)-1]

	// migrate up applies every migration to an empty schema, and then has
	// nothing left to do.
	if out, want := a.text("migrate", "up"), fmt.Sprintf("applied %v to schema %s\n", versions, drv.Schema()); out != want {
		t.Errorf("migrate up printed %q, want %q", out, want)
	}
	var up map[string][]int
	a.json(&up, "migrate", "up")
	if applied, ok := up["applied"]; !ok || len(applied) != 0 {
		t.Errorf("migrate up -json on a migrated schema: %v, want an empty applied", up)
	}
	up = nil
	b.json(&up, "migrate", "up")
	if !slices.Equal(up["applied"], versions) {
		t.Errorf("migrate up -json applied %v, want %v", up["applied"], versions)
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
	var status []migrations.Status
	a.json(&status, "migrate", "status")
	if len(status) != len(st) {
		t.Errorf("migrate status -json: %d migrations, want %d", len(status), len(st))
	} else {
		for i, s := range st {
			g := status[i]
			if g.Version != s.Version || g.Name != s.Name || !g.Applied || !g.AppliedAt.Equal(s.AppliedAt) || g.Up != s.Up {
				t.Errorf("migrate status -json: migration %d is %d %q applied %v at %s, want %d %q at %s", i, g.Version, g.Name, g.Applied, g.AppliedAt, s.Version, s.Name, s.AppliedAt)
			}
		}
	}

	// The rows to show: a run that succeeded with two steps, a run that
	// failed at its second step (and its discarded job), two pending runs
	// and three plain jobs on queues nobody works, one of them cancelled.
	ok := workflow.Define("cli_ok", workflow.Options{},
		steps.Do("first", func(context.Context, *steps.Context[struct{}, struct{}]) error { return nil }),
		steps.Do("second", func(context.Context, *steps.Context[struct{}, struct{}]) error { return nil }))
	fail := workflow.Define("cli_fail", workflow.Options{MaxAttempts: 1},
		steps.Do("prepare", func(context.Context, *steps.Context[struct{}, struct{}]) error { return nil }),
		steps.Do("charge", func(context.Context, *steps.Context[struct{}, struct{}]) error { return errors.New("card declined") }))
	eng := enginetest.New(t, drv, enginetest.Config(1), ok, fail)
	enqueue := func(name, q string) uuid.UUID {
		t.Helper()
		res, err := eng.Enqueue(ctx, name, struct{}{}, workflow.EnqueueOptions{Queue: q})
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
		j, err := client.Enqueue(ctx, kind, nil, queue.EnqueueOptions{Queue: q})
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

	getRun := func(id uuid.UUID) *workflow.Run {
		t.Helper()
		r, err := eng.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	getJob := func(id int64) *storage.Job {
		t.Helper()
		j, err := client.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	listJobs := func(f storage.JobFilter) []*storage.Job {
		t.Helper()
		js, err := client.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	listRuns := func(f storage.RunFilter) []*workflow.Run {
		t.Helper()
		rs, err := eng.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	ids := func(js []*storage.Job) []int64 {
		var out []int64
		for _, j := range js {
			out = append(out, j.ID)
		}
		return out
	}

	done, failed := getRun(doneID), getRun(failedID)
	if done.State != storage.RunSucceeded || len(done.Steps) != 2 {
		t.Fatalf("set-up: run cli_ok is %s with %d steps, want succeeded with 2", done.State, len(done.Steps))
	}
	if failed.State != storage.RunFailed || failed.RecoveryPoint != "charge" || len(failed.Steps) != 2 || failed.Steps[1].State != storage.StepFailed {
		t.Fatalf("set-up: run cli_fail is %s at %q with steps %+v, want failed at charge", failed.State, failed.RecoveryPoint, failed.Steps)
	}
	failedJobs := listJobs(storage.JobFilter{RunID: failedID})
	if len(failedJobs) != 1 || failedJobs[0].State != storage.JobDiscarded || len(failedJobs[0].Errors) == 0 {
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
	out = a.text("queues")
	rows = table(t, out, "QUEUE STATE JOBS OLDEST DUE")
	if len(rows) != len(stats) {
		t.Errorf("queues: %d rows, want %d\n%s", len(rows), len(stats), out)
	} else {
		for i, s := range stats {
			want := []string{s.Queue, string(s.State), fmt.Sprint(s.Count)}
			if s.OldestDue != nil {
				want = append(want, s.OldestDue.Format(time.RFC3339))
			}
			if !slices.Equal(rows[i], want) {
				t.Errorf("queues: row %d is %q, want %q", i, rows[i], want)
			}
		}
	}
	var gotStats []storage.QueueStats
	a.json(&gotStats, "queues")
	if len(gotStats) != len(stats) {
		t.Errorf("queues -json: %d rows, want %d", len(gotStats), len(stats))
	} else {
		for i, s := range stats {
			g := gotStats[i]
			if g.Queue != s.Queue || g.State != s.State || g.Count != s.Count || (g.OldestDue == nil) != (s.OldestDue == nil) ||
				(s.OldestDue != nil && !g.OldestDue.Equal(*s.OldestDue)) {
				t.Errorf("queues -json: row %d is %+v, want %+v", i, g, s)
			}
		}
	}
	parkedAvailable := 0
	for _, s := range gotStats {
		if s.Queue == "parked" && s.State == storage.JobAvailable {
			parkedAvailable = int(s.Count)
		}
	}
	if parkedAvailable != 3 {
		t.Errorf("queues -json: %d available jobs on parked, want 3 (two runs' and one plain)", parkedAvailable)
	}

	// jobs list, with each of its flags.
	allJobs := listJobs(storage.JobFilter{})
	if len(allJobs) != 7 {
		t.Fatalf("set-up: %d jobs, want 7", len(allJobs))
	}
	for _, c := range []struct {
		args []string
		want []*storage.Job
	}{
		{nil, allJobs},
		{[]string{"-state", "available", "-queue", "parked", "-kind", "plain"}, []*storage.Job{getJob(plainID)}},
		{[]string{"-state", "cancelled, discarded"}, listJobs(storage.JobFilter{States: []storage.JobState{storage.JobCancelled, storage.JobDiscarded}})},
		{[]string{"-queue", "mail"}, []*storage.Job{getJob(reportID), getJob(spareID)}},
		{[]string{"-limit", "2"}, allJobs[:2]},
	} {
		args := append([]string{"jobs", "list"}, c.args...)
		what := strings.Join(args, " ")
		checkJobTable(t, what, a.text(args...), c.want)
		var got []storage.Job
		a.json(&got, args...)
		checkJobs(t, what+" -json", got, c.want)
	}
	if got := ids(listJobs(storage.JobFilter{States: []storage.JobState{storage.JobCancelled, storage.JobDiscarded}})); !slices.Equal(got, []int64{failedJob.ID, reportID}) {
		t.Fatalf("set-up: cancelled and discarded jobs %v, want %v", got, []int64{failedJob.ID, reportID})
	}

	// jobs get: a plain job, and the failed run's job with its error.
	for _, id := range []int64{plainID, failedJob.ID} {
		want := getJob(id)
		what := fmt.Sprintf("jobs get %d", id)
		checkJobTable(t, what, a.text("jobs", "get", fmt.Sprint(id)), []*storage.Job{want})
		var got storage.Job
		a.json(&got, "jobs", "get", fmt.Sprint(id))
		checkJobs(t, what+" -json", []storage.Job{got}, []*storage.Job{want})
	}
	if !strings.Contains(failedJob.Errors[len(failedJob.Errors)-1].Error, "card declined") {
		t.Errorf("the failed run's job has the errors %+v, want card declined", failedJob.Errors)
	}

	// runs list, with each of its flags.
	allRuns := listRuns(storage.RunFilter{})
	if got := []uuid.UUID{allRuns[0].ID, allRuns[1].ID, allRuns[2].ID, allRuns[3].ID}; len(allRuns) != 4 || !slices.Equal(got, []uuid.UUID{doneID, failedID, parked1, parked2}) {
		t.Fatalf("set-up: runs %v, want %v", got, []uuid.UUID{doneID, failedID, parked1, parked2})
	}
	for _, c := range []struct {
		args []string
		want []*workflow.Run
	}{
		{nil, allRuns},
		{[]string{"-state", "failed"}, allRuns[1:2]},
		{[]string{"-workflow", "cli_ok", "-state", "pending,running"}, allRuns[2:]},
		{[]string{"-workflow", "cli_fail"}, allRuns[1:2]},
		{[]string{"-limit", "1"}, allRuns[:1]},
	} {
		args := append([]string{"runs", "list"}, c.args...)
		what := strings.Join(args, " ")
		checkRunTable(t, what, a.text(args...), c.want, false)
		var got []workflow.Run
		a.json(&got, args...)
		checkRuns(t, what+" -json", got, c.want)
		for i := range got {
			if len(got[i].Steps) != 0 {
				t.Errorf("%s -json: run %d has a step log", what, i)
			}
		}
	}

	// runs get shows the run with its step log: both steps of the succeeded
	// run, and the failed run's failed step with its error.
	for _, r := range []*workflow.Run{done, failed} {
		what := "runs get " + r.ID.String()
		checkRunTable(t, what, a.text("runs", "get", r.ID.String()), []*workflow.Run{r}, true)
		var got workflow.Run
		a.json(&got, "runs", "get", r.ID.String())
		checkRuns(t, what+" -json", []workflow.Run{got}, []*workflow.Run{r})
	}
	if names := []string{done.Steps[0].Name, done.Steps[1].Name}; !slices.Equal(names, []string{"first", "second"}) {
		t.Errorf("succeeded run's step log %v, want first, second", names)
	}
	if s := failed.Steps[1]; s.Name != "charge" || !strings.Contains(s.Error, "card declined") {
		t.Errorf("failed run's second step %+v, want charge failing with card declined", s)
	}

	// jobs cancel and jobs retry change the job they name and print it as
	// it is now.
	jobCommand := func(cmd string, id int64, asJSON bool, want storage.JobState) {
		t.Helper()
		what := fmt.Sprintf("jobs %s %d (json %v)", cmd, id, asJSON)
		var got storage.Job
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
			checkJobs(t, what, []storage.Job{got}, []*storage.Job{now})
		} else {
			checkJobTable(t, what, text, []*storage.Job{now})
		}
	}
	jobCommand("cancel", plainID, false, storage.JobCancelled)
	jobCommand("retry", plainID, true, storage.JobAvailable)
	jobCommand("retry", reportID, false, storage.JobAvailable)
	jobCommand("cancel", spareID, true, storage.JobCancelled)

	// runs retry and runs cancel change the run they name (and its jobs) and
	// print it as it is now, with its step log.
	runCommand := func(cmd string, id uuid.UUID, asJSON bool, want storage.RunState, wantJob storage.JobState) {
		t.Helper()
		what := fmt.Sprintf("runs %s %s (json %v)", cmd, id, asJSON)
		var got workflow.Run
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
			checkRuns(t, what, []workflow.Run{got}, []*workflow.Run{now})
		} else {
			checkRunTable(t, what, text, []*workflow.Run{now}, len(now.Steps) > 0)
		}
		// The jobs that execute the run (cancel also stages a finish job).
		jobs := listJobs(storage.JobFilter{RunID: id, Kind: now.Workflow})
		if last := jobs[len(jobs)-1]; last.State != wantJob {
			t.Errorf("%s: the run's latest job %d is %s, want %s", what, last.ID, last.State, wantJob)
		}
	}
	runCommand("retry", failedID, false, storage.RunPending, storage.JobAvailable)
	if r := getRun(failedID); len(r.Steps) != 2 || r.RecoveryPoint != "charge" {
		t.Errorf("retried run at %q with %d steps, want at charge with its step log kept", r.RecoveryPoint, len(r.Steps))
	}
	runCommand("cancel", parked1, true, storage.RunCancelled, storage.JobCancelled)
	runCommand("retry", parked1, true, storage.RunPending, storage.JobAvailable)
	runCommand("cancel", parked2, false, storage.RunCancelled, storage.JobCancelled)

	// runs list sees what the commands did.
	var got []workflow.Run
	a.json(&got, "runs", "list")
	checkRuns(t, "runs list -json at the end", got, listRuns(storage.RunFilter{}))
	if len(got) == 4 && (got[1].State != storage.RunPending || got[2].State != storage.RunPending || got[3].State != storage.RunCancelled) {
		t.Errorf("runs at the end: %s %s %s, want pending pending cancelled", got[1].State, got[2].State, got[3].State)
	}
}
