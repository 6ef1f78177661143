// Package cli implements the acidic command. Run takes the arguments and
// writers, so tests drive the command in-process.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic/internal/bench"
	"github.com/acidic-go/acidic/migrations"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const usage = `acidic operates an Acidic database.

Usage:
  acidic [-database URL] [-schema NAME] [-json] <command> [arguments]

Commands:
  migrate up               apply pending migrations
  migrate down VERSION     revert migrations above VERSION (0 removes every table)
  migrate status           list migrations and whether they are applied
  queues                   count jobs by queue and state
  jobs list [-state S] [-queue Q] [-kind K] [-limit N]
  jobs get ID | jobs retry ID | jobs cancel ID
  runs list [-state S] [-workflow W] [-limit N]
  runs get ID              a run with its step log
  runs retry ID            resume a failed, cancelled or halted run
  runs cancel ID           cancel a run, its jobs and its children
  bench [flags]            measure the engine (acidic bench -h)

Global flags:
`

// errUsage marks errors in how the command was called.
var errUsage = errors.New("usage")

type env struct {
	ctx    context.Context
	out    io.Writer
	json   bool
	url    string
	schema string
	pool   *pgxpool.Pool
	drv    *postgres.Driver
}

// Run runs the command with args (without the program name) and returns the
// process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("acidic", flag.ContinueOnError)
	fs.SetOutput(stderr)
	e := &env{ctx: ctx, out: stdout}
	fs.StringVar(&e.url, "database", envOr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/acidic_test?sslmode=disable"), "PostgreSQL URL (default $DATABASE_URL)")
	fs.StringVar(&e.schema, "schema", migrations.DefaultSchema, "schema holding Acidic's tables")
	fs.BoolVar(&e.json, "json", false, "print JSON instead of tables")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return exitUsage
	}
	var err error
	switch rest[0] {
	case "bench":
		return bench.Main(ctx, e.url, rest[1:], stdout, stderr)
	case "migrate":
		err = e.withDB(func() error { return e.migrate(rest[1:]) })
	case "queues":
		err = e.withDB(e.queues)
	case "jobs":
		err = e.withDB(func() error { return e.jobs(rest[1:]) })
	case "runs":
		err = e.withDB(func() error { return e.runs(rest[1:]) })
	case "help":
		fs.Usage()
		return exitOK
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, rest[0])
	}
	if err != nil {
		fmt.Fprintln(stderr, "acidic:", err)
		if errors.Is(err, errUsage) {
			fmt.Fprintln(stderr, "run acidic -h for usage")
			return exitUsage
		}
		return exitError
	}
	return exitOK
}

func (e *env) withDB(fn func() error) error {
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, e.url)
	if err != nil {
		return fmt.Errorf("database %q: %w", redact(e.url), err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("database %q: %w", redact(e.url), err)
	}
	e.pool = pool
	e.drv = postgres.New(pool, postgres.Options{Schema: e.schema})
	return fn()
}

func (e *env) migrate(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: migrate needs up, down VERSION or status", errUsage)
	}
	m := e.drv.Migrator()
	switch args[0] {
	case "up":
		applied, err := m.Up(e.ctx)
		if err != nil {
			return err
		}
		return e.print(map[string]any{"applied": applied}, func(w io.Writer) {
			if len(applied) == 0 {
				fmt.Fprintf(w, "schema %s is up to date (version %d)\n", e.schema, m.Latest())
				return
			}
			fmt.Fprintf(w, "applied %v to schema %s\n", applied, e.schema)
		})
	case "down":
		if len(args) != 2 {
			return fmt.Errorf("%w: migrate down needs a VERSION", errUsage)
		}
		v, err := strconv.Atoi(args[1])
		if err != nil {
			return fmt.Errorf("%w: version %q is not a number", errUsage, args[1])
		}
		reverted, err := m.Down(e.ctx, v)
		if err != nil {
			return err
		}
		return e.print(map[string]any{"reverted": reverted}, func(w io.Writer) {
			fmt.Fprintf(w, "reverted %v in schema %s\n", reverted, e.schema)
		})
	case "status":
		st, err := m.Status(e.ctx)
		if err != nil {
			return err
		}
		return e.print(st, func(w io.Writer) {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED")
			for _, s := range st {
				at := "no"
				if s.Applied {
					at = s.AppliedAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\n", s.Version, s.Name, at)
			}
			tw.Flush()
		})
	}
	return fmt.Errorf("%w: unknown migrate command %q", errUsage, args[0])
}

func (e *env) queues() error {
	stats, err := e.drv.JobStats(e.ctx)
	if err != nil {
		return err
	}
	return e.print(stats, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "QUEUE\tSTATE\tJOBS\tOLDEST DUE")
		for _, s := range stats {
			oldest := ""
			if s.OldestDue != nil {
				oldest = s.OldestDue.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", s.Queue, s.State, s.Count, oldest)
		}
		tw.Flush()
	})
}

func (e *env) jobs(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: jobs needs list, get, retry or cancel", errUsage)
	}
	client, err := queue.New(e.drv, queue.Config{})
	if err != nil {
		return err
	}
	if args[0] == "list" {
		fs := flag.NewFlagSet("jobs list", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		state := fs.String("state", "", "comma-separated states")
		q := fs.String("queue", "", "queue")
		kind := fs.String("kind", "", "kind")
		limit := fs.Int("limit", 100, "rows")
		if err := fs.Parse(args[1:]); err != nil {
			return fmt.Errorf("%w: jobs list: %w", errUsage, err)
		}
		if *limit < 1 {
			return fmt.Errorf("%w: jobs list: -limit must be at least 1", errUsage)
		}
		states, err := parseStates(*state, func(s string) bool { return storage.JobState(s).Valid() })
		if err != nil {
			return err
		}
		f := storage.JobFilter{Queue: *q, Kind: *kind, Limit: *limit}
		for _, s := range states {
			f.States = append(f.States, storage.JobState(s))
		}
		jobs, err := client.List(e.ctx, f)
		if err != nil {
			return err
		}
		return e.print(jobs, func(w io.Writer) { printJobs(w, jobs) })
	}
	if len(args) != 2 {
		return fmt.Errorf("%w: jobs %s needs one job ID", errUsage, args[0])
	}
	id, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil || id <= 0 {
		return fmt.Errorf("%w: job ID %q is not a positive number", errUsage, args[1])
	}
	var job *queue.Job
	switch args[0] {
	case "get":
		job, err = client.Get(e.ctx, id)
	case "retry":
		job, err = client.Retry(e.ctx, id)
	case "cancel":
		job, err = client.Cancel(e.ctx, id)
	default:
		return fmt.Errorf("%w: unknown jobs command %q", errUsage, args[0])
	}
	if err != nil {
		return err
	}
	return e.print(job, func(w io.Writer) { printJobs(w, []*queue.Job{job}) })
}

func (e *env) runs(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: runs needs list, get, retry or cancel", errUsage)
	}
	eng, err := workflow.NewEngine(e.drv, workflow.Config{})
	if err != nil {
		return err
	}
	if args[0] == "list" {
		fs := flag.NewFlagSet("runs list", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		state := fs.String("state", "", "comma-separated states")
		wf := fs.String("workflow", "", "workflow")
		limit := fs.Int("limit", 100, "rows")
		if err := fs.Parse(args[1:]); err != nil {
			return fmt.Errorf("%w: runs list: %w", errUsage, err)
		}
		if *limit < 1 {
			return fmt.Errorf("%w: runs list: -limit must be at least 1", errUsage)
		}
		states, err := parseStates(*state, func(s string) bool { return storage.RunState(s).Valid() })
		if err != nil {
			return err
		}
		f := storage.RunFilter{Workflow: *wf, Limit: *limit}
		for _, s := range states {
			f.States = append(f.States, storage.RunState(s))
		}
		runs, err := eng.List(e.ctx, f)
		if err != nil {
			return err
		}
		return e.print(runs, func(w io.Writer) { printRuns(w, runs) })
	}
	if len(args) != 2 {
		return fmt.Errorf("%w: runs %s needs one run ID", errUsage, args[0])
	}
	id, err := uuid.Parse(args[1])
	if err != nil {
		return fmt.Errorf("%w: run ID %q is not a UUID", errUsage, args[1])
	}
	var r *workflow.Run
	switch args[0] {
	case "get":
		r, err = eng.Get(e.ctx, id)
	case "retry":
		r, err = eng.Retry(e.ctx, id)
	case "cancel":
		r, err = eng.Cancel(e.ctx, id)
	default:
		return fmt.Errorf("%w: unknown runs command %q", errUsage, args[0])
	}
	if err != nil {
		return err
	}
	if args[0] != "get" {
		if r, err = eng.Get(e.ctx, id); err != nil {
			return err
		}
	}
	return e.print(r, func(w io.Writer) {
		printRuns(w, []*workflow.Run{r})
		if len(r.Steps) > 0 {
			fmt.Fprintln(w)
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "#\tSTEP\tSTATE\tATTEMPT\tEXECUTIONS\tFINISHED\tERROR")
			for _, s := range r.Steps {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\t%s\n", s.Position+1, s.Name, s.State, s.Attempt, s.Executions, s.FinishedAt.Format(time.RFC3339), s.Error)
			}
			tw.Flush()
		}
	})
}

func printJobs(w io.Writer, jobs []*queue.Job) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tQUEUE\tKIND\tSTATE\tATTEMPT\tSCHEDULED\tLAST ERROR")
	for _, j := range jobs {
		last := ""
		if n := len(j.Errors); n > 0 {
			last = oneLine(j.Errors[n-1].Error)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", j.ID, j.Queue, j.Kind, j.State, j.Attempt, j.MaxAttempts, j.ScheduledAt.Format(time.RFC3339), last)
	}
	tw.Flush()
}

func printRuns(w io.Writer, runs []*workflow.Run) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWORKFLOW\tSTATE\tRECOVERY POINT\tKEY\tUPDATED\tERROR")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Workflow, r.State, r.RecoveryPoint, r.IdempotencyKey, r.UpdatedAt.Format(time.RFC3339), oneLine(r.Error))
	}
	tw.Flush()
}

func (e *env) print(v any, table func(io.Writer)) error {
	if e.json {
		enc := json.NewEncoder(e.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	table(e.out)
	return nil
}

func parseStates(list string, valid func(string) bool) ([]string, error) {
	if list == "" {
		return nil, nil
	}
	var out []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if !valid(s) {
			return nil, fmt.Errorf("%w: unknown state %q", errUsage, s)
		}
		out = append(out, s)
	}
	return out, nil
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// redact hides a password in a connection URL.
func redact(url string) string {
	if at := strings.Index(url, "@"); at > 0 {
		if scheme := strings.Index(url, "://"); scheme > 0 && scheme < at {
			userinfo := url[scheme+3 : at]
			if user, _, ok := strings.Cut(userinfo, ":"); ok {
				return url[:scheme+3] + user + ":xxx" + url[at:]
			}
		}
	}
	return url
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
