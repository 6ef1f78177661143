package cli_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/enginetest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/internal/tools/cli"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/workflow"
)

func TestClean(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain text, (punctuation) and ünïcödé ✓": "plain text, (punctuation) and ünïcödé ✓",
		"clear\x1b[2Jscreen":                      `clear\x1b[2Jscreen`,
		"title\x1b]0;pwned\x07":                   `title\x1b]0;pwned\a`,
		"tab\there\nnewline\r":                    `tab\there\nnewline\r`,
		"del\x7f c1\u009b[31m":                    `del\x7f c1\u009b[31m`,
		"bidi \u202eevil\u202c":                   `bidi \u202eevil\u202c`,
		"line\u2028separator":                     `line\u2028separator`,
		"bad \xff\xfe utf8":                       `bad \xff\xfe utf8`,
		`back\slash \x1b kept`:                    `back\slash \x1b kept`,
		"":                                        "",
	} {
		if got := cli.Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}

// hostile holds the bytes a stored text may use to attack a terminal: clear
// the screen, set the window title, a C1 CSI, a bidirectional override, a
// tab and a newline that would break a table, invalid UTF-8.
const hostile = "\x1b[2J\x1b]0;pwned\x07\u009b31m\u202eX\tY\nZ\r\x7f"

// rawControl returns the first byte (or rune) of out that a terminal would
// act on: a control character other than the newline, a C1 control, a
// non-printing rune, or invalid UTF-8.
func rawControl(out string) (string, bool) {
	for i, r := range out {
		switch {
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(out[i:]); size == 1 {
				return out[i : i+1], true
			}
		case r == '\n':
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == '\u202e' || r == '\u2028':
			return string(r), true
		}
	}
	return "", false
}

// TestStoredControlBytesAreEscapedInText stores runs and jobs whose error,
// key, kind, queue, workflow name and arguments hold terminal escapes,
// tabs and newlines, and checks that no text output carries one raw (each
// shows escaped), that tables stay aligned, and that -json round-trips
// every such value exactly.
func TestStoredControlBytesAreEscapedInText(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: it stores the control bytes with raw PostgreSQL SQL.
	drv := testdb.New(t, testdb.Options{MaxConns: 4})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	type hArgs struct {
		Note string `json:"note"`
	}
	wf := workflow.Define("hostile", workflow.Options{MaxAttempts: 1},
		steps.Do("boom", func(context.Context, *steps.Context[hArgs, struct{}]) error {
			return errors.New("card declined" + hostile + strings.Repeat(" and then some", 20))
		}))
	eng := enginetest.New(t, drv, enginetest.Config(1), wf)
	res, err := eng.Enqueue(ctx, "hostile", hArgs{Note: "args" + hostile}, workflow.EnqueueOptions{Key: "key" + hostile})
	if err != nil {
		t.Fatal(err)
	}
	runID := res.Run.ID
	if _, err := eng.Queue().Drain(ctx, queue.DefaultQueue, queue.DrainOptions{}); err != nil {
		t.Fatal(err)
	}
	job, err := eng.Queue().Enqueue(ctx, "kind", map[string]string{"a": hostile}, queue.EnqueueOptions{Queue: "plain"})
	if err != nil {
		t.Fatal(err)
	}
	// Names the API refuses (docs/limits.md), written as they may already be
	// stored by an older version or another writer: a workflow, a queue and
	// a kind named with escapes.
	for _, sql := range []string{
		"UPDATE " + pgx.Identifier{drv.Schema(), "runs"}.Sanitize() + " SET workflow = workflow || $1, queue = queue || $1",
		"UPDATE " + pgx.Identifier{drv.Schema(), "jobs"}.Sanitize() + " SET queue = queue || $1",
		"UPDATE " + pgx.Identifier{drv.Schema(), "jobs"}.Sanitize() + " SET kind = kind || $1 WHERE kind = 'kind'",
	} {
		if _, err := drv.Pool().Exec(ctx, sql, hostile); err != nil {
			t.Fatal(err)
		}
	}
	r, err := eng.Get(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != acidic.RunFailed || !strings.Contains(r.Error, hostile) || len(r.Steps) != 1 || !strings.Contains(r.Steps[0].Error, hostile) {
		t.Fatalf("set-up: run %s with error %q and steps %+v, want failed with the hostile error", r.State, r.Error, r.Steps)
	}
	jobs, err := eng.Queue().List(ctx, acidic.JobFilter{})
	if err != nil || len(jobs) != 2 {
		t.Fatalf("set-up: jobs %v, %v", jobs, err)
	}
	runJob := jobs[0]

	a := shell{t: t, ctx: ctx, base: dbFlags(drv)}
	escaped := cli.Clean(hostile)
	for _, args := range [][]string{
		{"runs", "list"}, {"runs", "get", runID.String()}, {"jobs", "list"}, {"queues"},
		{"jobs", "get", itoa(runJob.ID)}, {"jobs", "get", itoa(job.ID)},
		{"jobs", "list", "-kind", "kind" + hostile}, {"runs", "list", "-workflow", "hostile" + hostile},
	} {
		out := a.text(args...)
		what := strings.Join(args[:min(2, len(args))], " ")
		if c, ok := rawControl(out); ok {
			t.Errorf("acidic %s: prints %q raw:\n%s", what, c, out)
		}
		if !strings.Contains(out, `\x1b[2J\x1b]0;pwned\a\u009b31m\u202eX\tY\nZ`) {
			t.Errorf("acidic %s: does not show the stored text escaped (%s):\n%s", what, escaped, out)
		}
		if strings.Contains(out, "\t") {
			t.Errorf("acidic %s: a tab reached the output", what)
		}
		if args[0] == "queues" || args[1] == "list" {
			for _, tb := range strings.Split(out, "\n\n") { // queues prints two tables
				columns(t, "acidic "+what, tb)
			}
		}
	}

	// Long values of a detail view are folded to 100 columns (stdout is not
	// a terminal), losing nothing.
	fields, _ := detail(t, a.text("runs", "get", runID.String()))
	// (A fold replaces a space, or splits a word that has none.)
	noSpace := func(s string) string { return strings.Join(strings.Fields(s), "") }
	if noSpace(fields["error"]) != noSpace(cli.Clean(r.Error)) {
		t.Errorf("runs get: the error folded is %q, want %q", fields["error"], cli.Clean(r.Error))
	}
	head, _, _ := strings.Cut(a.text("runs", "get", runID.String()), "\n\n")
	for _, l := range strings.Split(head, "\n") {
		if n := utf8.RuneCountInString(l); n > 100 {
			t.Errorf("runs get: a line of %d columns: %q", n, l)
		}
	}

	// JSON keeps every value exactly.
	var runs []cli.RunJSON
	a.json(&runs, "runs", "list")
	if len(runs) != 1 || runs[0].Workflow != "hostile"+hostile || runs[0].Queue != "default"+hostile ||
		runs[0].IdempotencyKey != r.IdempotencyKey || runs[0].Error == nil || *runs[0].Error != r.Error {
		t.Errorf("runs list -json: %+v, want the stored values exactly", runs)
	}
	var got cli.RunDetailJSON
	out := a.json(&got, "runs", "get", runID.String())
	if got.Steps[0].Error == nil || *got.Steps[0].Error != r.Steps[0].Error || !sameJSON(t, got.Args, r.Args) {
		t.Errorf("runs get -json: step error %v and args %s, want %q and %s", got.Steps[0].Error, got.Args, r.Steps[0].Error, r.Args)
	}
	if c, ok := rawControl(out); ok {
		t.Errorf("runs get -json: prints %q raw (JSON escapes it):\n%s", c, out)
	}
	var gotJobs []cli.JobJSON
	a.json(&gotJobs, "jobs", "list")
	if len(gotJobs) != 2 || gotJobs[1].Kind != "kind"+hostile || gotJobs[1].Queue != "plain"+hostile ||
		len(gotJobs[0].Errors) == 0 || gotJobs[0].Errors[0].Error != runJob.Errors[0].Error {
		t.Errorf("jobs list -json: %+v, want the stored kinds, queues and errors exactly", gotJobs)
	}

	// An error message built from an argument is cleaned as well.
	res2 := a.run("runs", "list", "-state", "failed"+hostile)
	if c, ok := rawControl(res2.stderr); ok || res2.code != 2 {
		t.Errorf("runs list -state with escapes: exit %d, prints %q raw:\n%s", res2.code, c, res2.stderr)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
