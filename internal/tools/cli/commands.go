package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// command is one command of acidic.
type command struct {
	// name is the command's words: "queues", "runs list".
	name string
	// forms are the ways to call it, for the help.
	forms []usageLine
	// about is more help, shown by acidic help COMMAND.
	about string
	// anySchema: the command works on a schema that is not (fully)
	// migrated. Others refuse it with ExitNotMigrated.
	anySchema bool
	// setup defines the command's flags on fs and returns prepare, which
	// checks the positional arguments (before any connection is made) and
	// returns the action to run once connected.
	setup func(e *env, fs *flag.FlagSet) (prepare func(args []string) (do func() error, err error))
}

// usageLine is one form of a command and what it does.
type usageLine struct{ call, what string }

// commands lists every command, in the order of the help.
var commands = []*command{
	{name: "migrate up", anySchema: true, setup: setupMigrateUp,
		forms: []usageLine{{"migrate up", "apply pending migrations (creates the schema)"}}},
	{name: "migrate down", anySchema: true, setup: setupMigrateDown,
		forms: []usageLine{{"migrate down VERSION", "revert migrations above VERSION (0 removes every table)"}}},
	{name: "migrate status", anySchema: true, setup: setupMigrateStatus,
		forms: []usageLine{{"migrate status", "list migrations and whether they are applied"}}},
	{name: "queues", setup: setupQueues,
		forms: []usageLine{{"queues", "count jobs by queue and state; the oldest available job's age"}},
		about: "A job is available when it could run now: available, or scheduled or retryable\n" +
			"and due. Its age is how long it has waited since it became due, on the\n" +
			"database's clock."},
	{name: "nodes", setup: setupNodes,
		forms: []usageLine{{"nodes", "live nodes (started queue clients and engines), the leader marked"}},
		about: "Each node records its row with its heartbeat: host, process, version, the\n" +
			"queues it works with their workers busy and free. The leader (*) runs the\n" +
			"maintenance and deletes the rows of nodes that stopped heartbeating."},
	{name: "queues pause", setup: setupQueuePause,
		forms: []usageLine{{"queues pause QUEUE", "stop fetching the queue's jobs on every node"}},
		about: "Once the command returns, no node fetches a job of the queue (a fetch\n" +
			"already under way may still take some), nor do nodes started later;\n" +
			"running jobs finish. QUEUE must be known: worked by a node, controlled\n" +
			"before, or holding unfinished jobs."},
	{name: "queues resume", setup: setupQueueResume,
		forms: []usageLine{{"queues resume QUEUE", "fetch a paused queue's jobs again on every node"}}},
	{name: "queues scale", setup: setupQueueScale,
		forms: []usageLine{{"queues scale QUEUE WORKERS", "run WORKERS jobs of the queue at once per node; default: the node's own"}},
		about: "WORKERS is a whole number from 1, or \"default\" to send every node back to\n" +
			"its own configuration (QueueConfig.MaxWorkers). Scaled down, nodes start\n" +
			"no job of the queue until their running ones are fewer; none is stopped."},
	{name: "queues controls", setup: setupQueueControls,
		forms: []usageLine{{"queues controls", "list the known queues: paused, workers per node"}}},
	{name: "jobs list", setup: setupJobsList,
		forms: []usageLine{{"jobs list [-state S] [-queue Q] [-kind K] [-limit N]", "list jobs, oldest first"}}},
	{name: "jobs get", setup: setupJobGet,
		forms: []usageLine{{"jobs get ID", "a job with its arguments and error history"}}},
	{name: "jobs retry", setup: setupJobsRetry,
		forms: []usageLine{
			{"jobs retry ID", "make a finished or retryable job available now"},
			{"jobs retry [-state S] [-queue Q] [-kind K]", "retry every matching job (one filter at least)"},
		},
		about: "Without -state, the filter form retries the matching jobs that are discarded,\n" +
			"cancelled, completed or retryable; running and pending jobs are skipped."},
	{name: "jobs cancel", setup: setupJobsCancel,
		forms: []usageLine{
			{"jobs cancel ID", "cancel a job that has not finished"},
			{"jobs cancel [-state S] [-queue Q] [-kind K]", "cancel every matching job (one filter at least)"},
		},
		about: "Without -state, the filter form cancels the matching jobs that have not finished\n" +
			"(pending, available, scheduled, running, retryable). A job that carries a\n" +
			"workflow run ends the run with it."},
	{name: "runs list", setup: setupRunsList,
		forms: []usageLine{{"runs list [-state S] [-workflow W] [-limit N]", "list runs, oldest first"}}},
	{name: "runs get", setup: setupRunGet,
		forms: []usageLine{{"runs get ID", "a run: arguments, state, result, step log"}}},
	{name: "runs retry", setup: setupRunsRetry,
		forms: []usageLine{
			{"runs retry ID", "resume a failed, cancelled or halted run"},
			{"runs retry [-state S] [-workflow W]", "resume every matching run (one filter at least)"},
		},
		about: "Runs resume at their recovery point; steps that committed do not run again.\n" +
			"Without -state, the filter form resumes the matching runs that failed or\n" +
			"were cancelled."},
	{name: "runs cancel", setup: setupRunsCancel,
		forms: []usageLine{
			{"runs cancel ID", "cancel a run, its jobs and its children"},
			{"runs cancel [-state S] [-workflow W]", "cancel every matching run (one filter at least)"},
		},
		about: "Each run is cancelled with its jobs and its unfinished children, and its OnFinish\n" +
			"runs. Without -state, the filter form cancels the matching runs that have not\n" +
			"finished (pending, running, awaiting, halted)."},
	{name: "cron list", setup: setupCronList,
		forms: []usageLine{{"cron list", "periodic schedules with their last and next run"}},
		about: "A schedule is written by the clients that register it (queue.PeriodicJob,\n" +
			"workflow.Periodic) when they start. LAST RUN is the scheduled time of the last\n" +
			"period enqueued; a NEXT RUN in the past is a period due now, or missed while\n" +
			"no client ran (see docs/operations.md, \"Periodic jobs\")."},
	{name: "bench",
		forms: []usageLine{{"bench [flags]", "measure the engine (acidic bench -h)"}}},
}

func lookupCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// groupCommands returns the commands of a group ("runs").
func groupCommands(group string) []*command {
	var out []*command
	for _, c := range commands {
		if strings.HasPrefix(c.name, group+" ") {
			out = append(out, c)
		}
	}
	return out
}

// subNames lists a group's commands: "list, get, retry or cancel".
func subNames(group string) string {
	var names []string
	for _, c := range groupCommands(group) {
		names = append(names, strings.TrimPrefix(c.name, group+" "))
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

const globalFlagsText = `Global flags (before or after the command's name):
  -database URL   the store: a PostgreSQL URL (postgres://user@host:5432/db) or
                  key=value pairs (host=h user=u dbname=db), or sqlite:PATH for a
                  SQLite file. Default: $DATABASE_URL, else the SQLite file at
                  $ACIDIC_DB, else ./acidic.db (as the examples choose).
  -schema NAME    schema holding Acidic's tables on PostgreSQL. Default:
                  $ACIDIC_SCHEMA, else acidic. A SQLite file has no schemas.
  -json           print JSON instead of text (its shape: docs/cli.md).
`

const exitText = `Exit status:
  0  success
  1  the operation failed (database unreachable or refusing, run not retryable, ...)
  2  usage: unknown command or flag, missing or extra argument, bad value, empty database
  3  bench -check: a target was missed
  4  not found: no job or run has that ID, no queue that name
  5  the schema is not migrated (run: acidic migrate up)
`

// usageText is the whole help.
func usageText() string {
	var b strings.Builder
	b.WriteString(`acidic operates the tables of an Acidic database: migrations, queues, jobs, runs, nodes.

Usage:
  acidic [-database URL] [-schema NAME] [-json] COMMAND [ARGUMENTS]

Commands:
`)
	writeForms(&b, commands)
	b.WriteString(`
-state takes states as the database stores them, comma-separated (-state failed,cancelled).
acidic help COMMAND says more about one command.

`)
	b.WriteString(globalFlagsText)
	b.WriteString(`
Environment:
  DATABASE_URL    the store, when -database is not given: PostgreSQL, or sqlite:PATH
  ACIDIC_DB       the SQLite file, when neither is given (default ./acidic.db)
  ACIDIC_SCHEMA   the schema, when -schema is not given

`)
	b.WriteString(exitText)
	return b.String()
}

func writeForms(w io.Writer, cmds []*command) {
	for _, c := range cmds {
		for _, f := range c.forms {
			if len(f.call) <= 26 {
				fmt.Fprintf(w, "  %-26s  %s\n", f.call, f.what)
			} else {
				fmt.Fprintf(w, "  %s\n  %-26s  %s\n", f.call, "", f.what)
			}
		}
	}
}

// help is acidic help [COMMAND]: the whole help, a group's or a command's,
// on stdout.
func (e *env) help(args []string) error {
	if len(args) == 0 {
		_, err := io.WriteString(e.stdout, usageText())
		return err
	}
	name := strings.Join(args, " ")
	if c := lookupCommand(name); c != nil {
		if c.name == "bench" {
			return e.bench([]string{"-h"})
		}
		return e.commandHelp(c)
	}
	if len(args) == 1 && len(groupCommands(args[0])) > 0 {
		return e.groupHelp(args[0])
	}
	return fmt.Errorf("%w: help: unknown command %q", errUsage, name)
}

// groupHelp prints the commands of a group.
func (e *env) groupHelp(group string) error {
	var b strings.Builder
	b.WriteString("Usage:\n")
	writeForms(&b, groupCommands(group))
	b.WriteString("\nacidic help " + group + " COMMAND says more about one of them.\n")
	_, err := io.WriteString(e.stdout, b.String())
	return err
}

// commandHelp prints one command's forms, flags and notes.
func (e *env) commandHelp(c *command) error {
	var b strings.Builder
	b.WriteString("Usage:\n")
	// A command that is also a group ("queues") shows the group's too.
	writeForms(&b, append([]*command{c}, groupCommands(c.name)...))
	fs := newFlagSet(c.name)
	c.setup(&env{lookupEnv: e.lookupEnv}, fs)
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			b.WriteString("\nFlags:\n")
			first = false
		}
		arg, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(&b, "  -%s %s\n      %s", f.Name, arg, usage)
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
			fmt.Fprintf(&b, " (default %s)", f.DefValue)
		}
		b.WriteString("\n")
	})
	if c.about != "" {
		b.WriteString("\n" + c.about + "\n")
	}
	b.WriteString("\n" + globalFlagsText)
	_, err := io.WriteString(e.stdout, b.String())
	return err
}
