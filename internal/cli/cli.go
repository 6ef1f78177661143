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
		var f storage.JobFilter
		err := parseList("jobs list", args[1:], &f.States, &f.Limit, func(fs *flag.FlagSet) {
			fs.StringVar(&f.Queue, "queue", "", "queue")
			fs.StringVar(&f.Kind, "kind", "", "kind")
		})
		if err != nil {
			return err
		}
		jobs, err := client.List(e.ctx, f)
		if err != nil {
			return err
		}
		return e.print(jobs, func(w io.Writer) { printJobs(w, jobs) })
	}
	job, err := byID(e.ctx, "job", args, parseJobID, client.Get, client.Retry, client.Cancel)
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
		var f storage.RunFilter
		err := parseList("runs list", args[1:], &f.States, &f.Limit, func(fs *flag.FlagSet) {
			fs.StringVar(&f.Workflow, "workflow", "", "workflow")
		})
		if err != nil {
			return err
		}
		runs, err := eng.List(e.ctx, f)
		if err != nil {
			return err
		}
		return e.print(runs, func(w io.Writer) { printRuns(w, runs) })
	}
	r, err := byID(e.ctx, "run", args, parseRunID, eng.Get, eng.Retry, eng.Cancel)
	if err != nil {
		return err
	}
	if args[0] != "get" {
		// Retry and Cancel return the run without its step log.
		if r, err = eng.Get(e.ctx, r.ID); err != nil {
			return err
		}
	}
	return e.print(r, func(w io.Writer) {
		printRuns(w, []*workflow.Run{r})
		if len(r.Steps) > 0 {
			fmt.Fprintln(w)
			printSteps(w, r.Steps)
		}
	})
}

// parseList parses the flags of "jobs list" or "runs list" (cmd): -state
// into states, -limit into limit, and the flags that define adds.
func parseList[S state](cmd string, args []string, states *[]S, limit *int, define func(*flag.FlagSet)) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	list := fs.String("state", "", "comma-separated states")
	fs.IntVar(limit, "limit", 100, "rows")
	define(fs)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %s: %w", errUsage, cmd, err)
	}
	if *limit < 1 {
		return fmt.Errorf("%w: %s: -limit must be at least 1", errUsage, cmd)
	}
	var err error
	*states, err = parseStates[S](*list)
	return err
}

// byID does "jobs get|retry|cancel ID" or the same for runs (noun is "job" or
// "run"): args holds the subcommand and the ID, which parse reads.
func byID[ID, T any](ctx context.Context, noun string, args []string, parse func(string) (ID, error), get, retry, cancel func(context.Context, ID) (T, error)) (T, error) {
	var zero T
	if len(args) != 2 {
		return zero, fmt.Errorf("%w: %ss %s needs one %s ID", errUsage, noun, args[0], noun)
	}
	id, err := parse(args[1])
	if err != nil {
		return zero, err
	}
	switch args[0] {
	case "get":
		return get(ctx, id)
	case "retry":
		return retry(ctx, id)
	case "cancel":
		return cancel(ctx, id)
	}
	return zero, fmt.Errorf("%w: unknown %ss command %q", errUsage, noun, args[0])
}

func parseJobID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: job ID %q is not a positive number", errUsage, s)
	}
	return id, nil
}

func parseRunID(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, fmt.Errorf("%w: run ID %q is not a UUID", errUsage, s)
	}
	return id, nil
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

func printSteps(w io.Writer, steps []storage.Step) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tSTEP\tSTATE\tATTEMPT\tEXECUTIONS\tFINISHED\tERROR")
	for _, s := range steps {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\t%s\n", s.Position+1, s.Name, s.State, s.Attempt, s.Executions, s.FinishedAt.Format(time.RFC3339), s.Error)
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

// state is storage.JobState or storage.RunState.
type state interface {
	~string
	Valid() bool
}

// parseStates reads a comma-separated list of states; "" is none.
func parseStates[S state](list string) ([]S, error) {
	if list == "" {
		return nil, nil
	}
	var out []S
	for _, s := range strings.Split(list, ",") {
		st := S(strings.TrimSpace(s))
		if !st.Valid() {
			return nil, fmt.Errorf("%w: unknown state %q", errUsage, st)
		}
		out = append(out, st)
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
