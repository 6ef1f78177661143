// Package bench measures the engine against the database's own commit rate
// and prints a table; `acidic bench` runs it.
//
// Every figure that depends on the machine is put next to a baseline measured
// on the same database in the same minute: raw SERIALIZABLE transactions that
// each update one row, with pgx alone on PostgreSQL, and on SQLite BEGIN
// IMMEDIATE; UPDATE one row; COMMIT on a connection of its own to the same
// file with the driver's pragmas. The ratio of the two (workflow steps/s ÷
// baseline tx/s) is what the targets are about, so they hold on a laptop and
// on a server alike. On PostgreSQL the bench creates a throwaway schema,
// migrates it, and drops it when it ends, also on Ctrl-C or an error; on
// SQLite it does the same with a throwaway file beside the one named (see
// sqlite.go).
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Exit codes of Main.
const (
	exitOK      = 0
	exitError   = 1
	exitUsage   = 2
	exitMissed  = 3 // -check: a target was missed
	defaultJobs = 5000
)

// Scenario names, in the order of the numbering. A scenario may be
// named by its number too.
var scenarioNames = []string{"enqueue", "jobs", "workflows", "baseline", "latency", "memory", "growth", "limits", "otel"}

// config is what the flags say.
type config struct {
	jsonPath    string
	workers     []int
	jobs        int // single enqueues and plain jobs per measurement
	manyBatch   int // jobs in the one EnqueueMany call
	workflows   int // runs per workflow measurement (baseline: 3× as many tx)
	runs        int // repetitions of each throughput measurement (median kept)
	memoryRuns  int
	growth      []int
	growthBatch int
	samples     int           // idle latency samples
	loadFor     time.Duration // length of each under-load latency test
	scenarios   map[string]bool
	quick       bool
	check       bool
	quiet       bool
}

func (c config) maxWorkers() int { return slices.Max(c.workers) }

func (c config) has(name string) bool { return c.scenarios[name] }

const usage = `acidic bench measures the engine against the raw commit rate of the same
database: on PostgreSQL in a throwaway schema it drops at the end; on SQLite
(-database sqlite:PATH) in a throwaway file beside PATH (PATH itself is not
touched) that it removes at the end.

Usage:
  acidic [-database URL] bench [flags]
  acidic -database sqlite:PATH bench [flags]

Scenarios (-scenario takes names or numbers):
  1 enqueue    Enqueue in a loop from N goroutines, and one EnqueueMany
  2 jobs       N trivial jobs enqueued, then worked to completion
  3 workflows  runs of a workflow of three empty steps
  4 baseline   raw SERIALIZABLE one-row-update transactions (pgx alone), or
               on SQLite BEGIN IMMEDIATE; UPDATE one row; COMMIT, and the
               efficiency ratio workflow steps/s ÷ baseline tx/s
  5 latency    enqueue-to-start and step commit latency, idle and under load
  6 memory     peak RSS and Go heap while many runs are queued and worked
  7 growth     per-job fetch+complete cost with many finished rows in the table
  8 limits     jobs/s of 3 clients without and with a global limit of 50, and
               the ratio: trivial jobs, and jobs of 20 ms (target ≥ 0.8)
  9 otel       throughput with OpenTelemetry traces and metrics on ÷ off
               (package otelacidic): empty jobs, steps, jobs of 1 ms
               (target ≥ 0.95); also with a parent-based 1% sampler

Flags:
`

// parseArgs reads the flags. Explicit flags win over -quick's sizes.
func parseArgs(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("acidic bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	var c config
	var workers, growth, scen string
	fs.StringVar(&c.jsonPath, "json", "", "also write the figures as JSON to `FILE` (- for stdout, instead of the table)")
	fs.StringVar(&workers, "workers", "1,4,16", "concurrency `list` (workers per queue, goroutines for the baseline)")
	fs.IntVar(&c.jobs, "jobs", defaultJobs, "jobs per enqueue and plain-jobs measurement")
	fs.IntVar(&c.manyBatch, "many", 10000, "jobs in the EnqueueMany measurement")
	fs.IntVar(&c.workflows, "workflows", 3000, "workflow runs at each concurrency, in 3 rounds (the baseline runs 3× as many transactions)")
	fs.IntVar(&c.runs, "runs", 1, "repeat each throughput measurement `N` times and keep the median (workflows, baseline and growth make 3 rounds per run)")
	fs.IntVar(&c.memoryRuns, "memory-runs", 100000, "workflow runs queued and worked in the memory scenario")
	fs.StringVar(&growth, "growth", "10000,100000,1000000", "finished rows in the jobs table for the growth scenario")
	fs.IntVar(&c.growthBatch, "growth-batch", 5000, "jobs worked at each growth size")
	fs.IntVar(&c.samples, "samples", 200, "idle latency samples (jobs, and step commits)")
	fs.DurationVar(&c.loadFor, "load-for", 3*time.Second, "length of each under-load latency test")
	fs.StringVar(&scen, "scenario", strings.Join(scenarioNames, ","), "scenarios to run, by name or number")
	fs.BoolVar(&c.quick, "quick", false, "small sizes, for tests: a few seconds in all")
	fs.BoolVar(&c.check, "check", false, "exit with status 3 when a target is missed")
	fs.BoolVar(&c.quiet, "q", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.quick {
		quick := map[string]func(){
			"workers":      func() { workers = "1,4" },
			"jobs":         func() { c.jobs = 200 },
			"many":         func() { c.manyBatch = 1000 },
			"workflows":    func() { c.workflows = 60 },
			"memory-runs":  func() { c.memoryRuns = 500 },
			"growth":       func() { growth = "1000,5000" },
			"growth-batch": func() { c.growthBatch = 100 },
			"samples":      func() { c.samples = 10 },
			"load-for":     func() { c.loadFor = 300 * time.Millisecond },
		}
		for name, apply := range quick {
			if !set[name] {
				apply()
			}
		}
	}
	var err error
	if c.workers, err = intList(workers); err != nil {
		return c, fmt.Errorf("-workers: %w", err)
	}
	if c.growth, err = intList(growth); err != nil {
		return c, fmt.Errorf("-growth: %w", err)
	}
	slices.Sort(c.growth)
	c.growth = slices.Compact(c.growth)
	for name, v := range map[string]int{"jobs": c.jobs, "many": c.manyBatch, "workflows": c.workflows, "runs": c.runs,
		"memory-runs": c.memoryRuns, "growth-batch": c.growthBatch, "samples": c.samples} {
		if v < 1 {
			return c, fmt.Errorf("-%s must be at least 1", name)
		}
	}
	if c.loadFor <= 0 {
		return c, errors.New("-load-for must be positive")
	}
	c.scenarios = map[string]bool{}
	for _, s := range strings.Split(scen, ",") {
		s = strings.TrimSpace(strings.ToLower(s))
		if s == "" {
			continue
		}
		if n, err := strconv.Atoi(s); err == nil && n >= 1 && n <= len(scenarioNames) {
			s = scenarioNames[n-1]
		}
		if s == "all" {
			for _, n := range scenarioNames {
				c.scenarios[n] = true
			}
			continue
		}
		if !slices.Contains(scenarioNames, s) {
			return c, fmt.Errorf("-scenario: unknown scenario %q (have %s)", s, strings.Join(scenarioNames, ", "))
		}
		c.scenarios[s] = true
	}
	if len(c.scenarios) == 0 {
		return c, errors.New("-scenario: none given")
	}
	return c, nil
}

// intList parses "1,4,16" (underscores allowed: 1_000_000).
func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.ReplaceAll(strings.TrimSpace(f), "_", "")
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

// Row is one figure of the table.
type Row struct {
	// Scenario is the number and name, e.g. "2 jobs".
	Scenario string `json:"scenario"`
	// Figure says what was measured.
	Figure      string  `json:"figure"`
	Concurrency int     `json:"concurrency"`
	Value       float64 `json:"value"`
	Unit        string  `json:"unit"`
	// Target is the goal as text ("≥ 0.6"), empty when the figure has none.
	Target string `json:"target,omitempty"`
	// Pass is nil when the figure has no target.
	Pass *bool `json:"pass,omitempty"`
	// Note adds context (median of how many runs, retries).
	Note string `json:"note,omitempty"`
	// ClientCPU and ServerCPU are µs of CPU per unit of the figure (per
	// job, step or transaction) spent in this process and in the
	// PostgreSQL backends serving it; ServerCPU is 0 when the database is
	// not on this machine.
	ClientCPU float64 `json:"client_cpu_us,omitempty"`
	ServerCPU float64 `json:"server_cpu_us,omitempty"`
}

// Report is what -json writes.
type Report struct {
	Started   time.Time `json:"started"`
	Seconds   float64   `json:"seconds"`
	Args      []string  `json:"args"`
	GoVersion string    `json:"go_version"`
	GOOS      string    `json:"goos"`
	GOARCH    string    `json:"goarch"`
	NumCPU    int       `json:"num_cpu"`
	Postgres  string    `json:"postgres"`
	Schema    string    `json:"schema"`
	// Driver is "postgres" or "sqlite".
	Driver string `json:"driver"`
	// SQLite is the SQLite library's version and File the throwaway file
	// the bench ran on, when Driver is "sqlite".
	SQLite string `json:"sqlite,omitempty"`
	File   string `json:"file,omitempty"`
	// Skipped lists the scenarios asked for that cannot run on this
	// database, and why.
	Skipped    []Skip `json:"skipped,omitempty"`
	Rows       []Row  `json:"rows"`
	TargetsMet int    `json:"targets_met"`
	Targets    int    `json:"targets"`
	Error      string `json:"error,omitempty"`
}

// Skip is a scenario that was asked for but cannot run on the database.
type Skip struct {
	Scenario string `json:"scenario"`
	Why      string `json:"why"`
}

// target is a goal a figure is checked against.
type target struct {
	op    string // ">=" or "<="
	value float64
}

func atLeast(v float64) *target { return &target{">=", v} }
func atMost(v float64) *target  { return &target{"<=", v} }

func (t *target) String() string {
	sym := "≥"
	if t.op == "<=" {
		sym = "≤"
	}
	return sym + " " + formatValue(t.value)
}

func (t *target) met(v float64) bool {
	if t.op == ">=" {
		return v >= t.value
	}
	return v <= t.value
}

// table collects rows.
type table struct{ rows []*Row }

func (t *table) add(scenario, figure string, conc int, value float64, unit string, tg *target, note string) *Row {
	r := &Row{Scenario: scenario, Figure: figure, Concurrency: conc, Value: value, Unit: unit, Note: note}
	if tg != nil {
		r.Target = tg.String()
		pass := tg.met(value)
		r.Pass = &pass
	}
	t.rows = append(t.rows, r)
	return r
}

// withCPU records CPU per unit (see Row) and mentions it in the note.
func (r *Row) withCPU(client, server float64, unit string) *Row {
	if client == 0 {
		return r
	}
	r.ClientCPU, r.ServerCPU = client, server
	cpu := fmt.Sprintf("cpu/%s: %.0fµs here", unit, client)
	if server > 0 {
		cpu += fmt.Sprintf(" + %.0fµs postgres", server)
	}
	r.Note = joinNotes(r.Note, cpu)
	return r
}

// sorted returns the rows in scenario order, keeping the order of each
// scenario's own rows.
func (t *table) sorted() []Row {
	out := make([]Row, len(t.rows))
	for i, r := range t.rows {
		out[i] = *r
	}
	slices.SortStableFunc(out, func(a, b Row) int { return strings.Compare(a.Scenario[:1], b.Scenario[:1]) })
	return out
}

func formatValue(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func printTable(w io.Writer, rows []Row) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tFIGURE\tCONC\tVALUE\tUNIT\tTARGET\tRESULT\tNOTE")
	for _, r := range rows {
		res := "-"
		if r.Pass != nil {
			res = "FAIL"
			if *r.Pass {
				res = "pass"
			}
		}
		tg := r.Target
		if tg == "" {
			tg = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Scenario, r.Figure, r.Concurrency, formatValue(r.Value), r.Unit, tg, res, r.Note)
	}
	tw.Flush()
}

// Main runs the bench command with its arguments and returns the exit code.
func Main(ctx context.Context, url string, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "acidic bench:", err)
		return exitUsage
	}
	started := time.Now()
	rep := Report{
		Started: started, Args: args, GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		NumCPU: runtime.NumCPU(),
	}
	progress := io.Writer(stderr)
	if cfg.quiet {
		progress = io.Discard
	}
	tbl := &table{}
	runErr := run(ctx, url, cfg, tbl, &rep, progress)
	rep.Seconds = time.Since(started).Seconds()
	rep.Rows = tbl.sorted()
	for _, r := range rep.Rows {
		if r.Pass != nil {
			rep.Targets++
			if *r.Pass {
				rep.TargetsMet++
			}
		}
	}
	if (len(rep.Rows) > 0 || len(rep.Skipped) > 0) && cfg.jsonPath != "-" {
		printReport(stdout, rep, time.Since(started))
	}
	if runErr != nil && ctx.Err() != nil && !strings.Contains(runErr.Error(), "interrupted") {
		// Stopped (Ctrl-C) before any scenario began: say so all the same.
		runErr = fmt.Errorf("interrupted: %w", runErr)
	}
	if runErr != nil {
		rep.Error = runErr.Error()
		fmt.Fprintln(stderr, "acidic bench:", runErr)
	}
	if cfg.jsonPath != "" {
		if err := writeJSON(cfg.jsonPath, rep, stdout); err != nil {
			fmt.Fprintln(stderr, "acidic bench:", err)
			return exitError
		}
	}
	switch {
	case runErr != nil:
		return exitError
	case cfg.check && rep.TargetsMet < rep.Targets:
		return exitMissed
	}
	return exitOK
}

// printReport prints the table, the scenarios that could not run and why,
// and the summary.
func printReport(w io.Writer, rep Report, took time.Duration) {
	if len(rep.Rows) > 0 {
		printTable(w, rep.Rows)
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "%s: not run on %s: %s\n", s.Scenario, rep.Driver, s.Why)
	}
	db := shortVersion(rep.Postgres)
	if rep.Driver == driverSQLite {
		db = "SQLite " + rep.SQLite
	}
	fmt.Fprintf(w, "\n%d of %d targets met; %s, %d CPUs, %s; bench took %s\n",
		rep.TargetsMet, rep.Targets, rep.GOOS+"/"+rep.GOARCH, rep.NumCPU, db, took.Round(time.Second))
}

func shortVersion(v string) string {
	f := strings.Fields(v)
	if len(f) >= 2 {
		return f[0] + " " + f[1]
	}
	return v
}

// writeJSON writes the report to the file at path, or to stdout when path
// is "-".
func writeJSON(path string, rep Report, stdout io.Writer) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if path == "-" {
		_, err := stdout.Write(append(b, '\n'))
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
