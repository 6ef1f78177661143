// Package cli implements the acidic command: migrate a schema, look at and
// act on its queues, jobs and runs, and run the bench. Command.Run takes the
// arguments, writers and environment, so tests drive the command in-process.
//
// Output is text for people, or JSON (-json) for programs, in a shape of the
// command's own (see views.go and docs/cli.md). Text never carries a stored
// byte to the terminal raw (see Clean), and nothing the command prints shows
// the database password: the connection string is never printed at all.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/tools/bench"
	"github.com/acidic-go/acidic/migrations"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/storage/storeurl"
)

// Exit statuses of the command, listed in its help and in docs/cli.md.
const (
	// ExitOK: the command did what it was asked.
	ExitOK = 0
	// ExitFailure: the operation failed (the database could not be reached
	// or refused it, a run cannot be retried, ...).
	ExitFailure = 1
	// ExitUsage: the command was called wrongly: an unknown command or flag,
	// a missing or extra argument, a malformed value, no database given.
	ExitUsage = 2
	// ExitTargetMissed: bench -check found a target missed.
	ExitTargetMissed = 3
	// ExitNotFound: no job or run has the ID given, or no queue the name.
	ExitNotFound = 4
	// ExitNotMigrated: the schema lacks Acidic's tables, or some of its
	// migrations; acidic migrate up fixes it.
	ExitNotMigrated = 5
)

// Command is the acidic command with what it reads and writes besides its
// arguments.
type Command struct {
	// Stdout receives results: tables, details, JSON.
	Stdout io.Writer
	// Stderr receives errors, help asked for by mistake, and progress.
	Stderr io.Writer
	// LookupEnv reads environment variables (DATABASE_URL, ACIDIC_SCHEMA).
	// Nil means os.LookupEnv.
	LookupEnv func(key string) (string, bool)
}

// Run runs the command with args (without the program name), reading the
// process environment, and returns the process exit status.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return Command{Stdout: stdout, Stderr: stderr}.Run(ctx, args)
}

// Run runs the command with args (without the program name) and returns the
// process exit status (ExitOK, ExitUsage, ...).
func (c Command) Run(ctx context.Context, args []string) int {
	e := &env{ctx: ctx, stdout: c.Stdout, stderr: c.Stderr, lookupEnv: c.LookupEnv}
	if e.stdout == nil {
		e.stdout = io.Discard
	}
	if e.stderr == nil {
		e.stderr = io.Discard
	}
	if e.lookupEnv == nil {
		e.lookupEnv = os.LookupEnv
	}
	err := e.run(args)
	if e.close != nil {
		e.close()
	}
	return e.exit(err)
}

// env is one invocation: its streams, global flags and, once connected, its
// database.
type env struct {
	ctx       context.Context
	stdout    io.Writer
	stderr    io.Writer
	lookupEnv func(string) (string, bool)

	// Global flags, accepted before and after the command's name.
	database optString
	schema   optString
	json     bool

	// drv is the database once connected, and close releases it.
	drv   driver
	close func()
	store *storeurl.Store // what drv runs on
}

// driver is what the commands need of a database: the storage contract and
// the driver's migrations.
type driver interface {
	storage.Driver
	Migrator() *migrations.Migrator
}

// errUsage marks errors in how the command was called.
var errUsage = errors.New("usage")

// errNoCommand is a call without a command: the usage text goes to stderr.
var errNoCommand = fmt.Errorf("%w: no command given", errUsage)

// exitStatus is an error that only carries a status: its command (bench)
// has said what went wrong already.
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// notFound is the error for an ID that names no job or run.
type notFound struct{ msg string }

func (n notFound) Error() string { return n.msg }

// exit prints err, if any, and returns the exit status it calls for.
func (e *env) exit(err error) int {
	if err == nil {
		return ExitOK
	}
	var status exitStatus
	if errors.As(err, &status) {
		return int(status)
	}
	code := ExitFailure
	var nf notFound
	switch {
	case errors.Is(err, errUsage):
		code = ExitUsage
	case errors.Is(err, errNotMigrated):
		code = ExitNotMigrated
	case errors.As(err, &nf) || errors.Is(err, acidic.ErrNotFound) || errors.Is(err, acidic.ErrUnknownQueue):
		code = ExitNotFound
	}
	msg := err.Error()
	if code == ExitUsage {
		msg = strings.TrimPrefix(msg, errUsage.Error()+": ")
	}
	if code == ExitNotMigrated {
		msg = strings.TrimPrefix(msg, errNotMigrated.Error()+": ")
	}
	fmt.Fprintln(e.stderr, "acidic: "+Clean(msg))
	switch {
	case errors.Is(err, errNoCommand):
		fmt.Fprint(e.stderr, usageText())
	case code == ExitUsage:
		fmt.Fprintln(e.stderr, "run 'acidic help' for usage")
	}
	return code
}

// optString is a string flag that records whether it was given.
type optString struct {
	value string
	set   bool
}

func (o *optString) String() string {
	if o == nil {
		return ""
	}
	return o.value
}

func (o *optString) Set(s string) error {
	o.value, o.set = s, true
	return nil
}

// newFlagSet returns a flag set that prints nothing: the command reports
// flag errors itself, and help goes to stdout.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// globalFlags defines the flags every command takes. They are defined on
// each flag set the arguments pass through, keeping what earlier ones set.
func (e *env) globalFlags(fs *flag.FlagSet) {
	fs.Var(&e.database, "database", "")
	fs.Var(&e.schema, "schema", "")
	fs.BoolVar(&e.json, "json", e.json, "")
}

var globalNames = map[string]bool{"database": true, "schema": true, "json": true}

// parseInterleaved parses flags wherever they are among args, so flags may
// follow positional arguments (runs get ID -json), and returns the
// positional arguments. "--" ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := args[:len(args)-len(rest)]; len(used) > 0 && used[len(used)-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// schemaName is the schema the command works on: -schema, else
// ACIDIC_SCHEMA, else postgres.DefaultSchema.
func (e *env) schemaName() string {
	if e.schema.set {
		return e.schema.value
	}
	if v, _ := e.lookupEnv("ACIDIC_SCHEMA"); v != "" {
		return v
	}
	return postgres.DefaultSchema
}

// checkSchema refuses a schema name PostgreSQL would not keep as given.
func (e *env) checkSchema() error {
	s := e.schemaName()
	switch {
	case e.schema.set && s == "":
		return fmt.Errorf("%w: -schema is empty", errUsage)
	case len(s) > postgres.MaxSchemaBytes:
		return fmt.Errorf("%w: schema name %q is longer than PostgreSQL's 63 bytes", errUsage, s)
	}
	return nil
}

func (e *env) printer() *printer {
	return &printer{w: e.stdout, json: e.json, width: terminalWidth(e.stdout)}
}

// logger is the engine's logger: warnings and errors, cleaned, on stderr.
func (e *env) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(cleanLines{e.stderr}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// run parses the arguments and runs the command they name.
func (e *env) run(args []string) error {
	fs := newFlagSet("acidic")
	e.globalFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, err := io.WriteString(e.stdout, usageText())
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return errNoCommand
	}
	if rest[0] == "help" {
		return e.help(rest[1:])
	}
	cmd, args, helped, err := e.find(rest)
	if err != nil || helped {
		return err
	}
	if cmd.name == "bench" {
		return e.bench(args)
	}
	fs = newFlagSet("acidic " + cmd.name)
	e.globalFlags(fs)
	prepare := cmd.setup(e, fs)
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return e.commandHelp(cmd)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %w", errUsage, cmd.name, err)
	}
	if err := e.checkSchema(); err != nil {
		return err
	}
	do, err := prepare(pos)
	if err != nil {
		return err
	}
	if err := e.connect(); err != nil {
		return err
	}
	if !cmd.anySchema {
		if err := e.requireMigrated(); err != nil {
			return err
		}
	}
	err = do()
	if missingTable(err) {
		return e.notMigrated("is not migrated")
	}
	return err
}

// find resolves the command named at the start of rest: a command
// ("queues") or a group and one of its commands ("runs list"), with global
// flags allowed between the two. It returns the command's arguments, or
// helped when it printed the help of a group instead.
func (e *env) find(rest []string) (cmd *command, args []string, helped bool, err error) {
	word := rest[0]
	bare := lookupCommand(word)
	subs := groupCommands(word)
	if bare != nil && len(subs) == 0 {
		return bare, rest[1:], false, nil
	}
	if len(subs) == 0 {
		return nil, nil, false, fmt.Errorf("%w: unknown command %q", errUsage, word)
	}
	fs := newFlagSet("acidic " + word)
	e.globalFlags(fs)
	if err := fs.Parse(rest[1:]); err != nil {
		switch {
		case errors.Is(err, flag.ErrHelp) && bare != nil:
			return nil, nil, true, e.commandHelp(bare)
		case errors.Is(err, flag.ErrHelp):
			return nil, nil, true, e.groupHelp(word)
		}
		return nil, nil, false, fmt.Errorf("%w: %s: %w", errUsage, word, err)
	}
	more := fs.Args()
	if bare != nil && (len(more) == 0 || lookupCommand(word+" "+more[0]) == nil) {
		// A word that is a command and a group ("queues"): the command,
		// unless a command of the group follows.
		return bare, more, false, nil
	}
	if len(more) == 0 {
		return nil, nil, false, fmt.Errorf("%w: %s needs %s", errUsage, word, subNames(word))
	}
	c := lookupCommand(word + " " + more[0])
	if c == nil {
		return nil, nil, false, fmt.Errorf("%w: unknown %s command %q (want %s)", errUsage, word, more[0], subNames(word))
	}
	return c, more[1:], false, nil
}

// wantArgs checks that cmd got exactly the positional arguments named.
func wantArgs(cmd string, args []string, names ...string) error {
	if len(args) == len(names) {
		return nil
	}
	if len(args) < len(names) {
		return fmt.Errorf("%w: %s needs %s", errUsage, cmd, strings.Join(names[len(args):], " "))
	}
	extra := args[len(names):]
	quoted := make([]string, len(extra))
	for i, a := range extra {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	return fmt.Errorf("%w: %s: unexpected argument %s", errUsage, cmd, strings.Join(quoted, " "))
}

// bench runs acidic bench. Its flags are its own: -json FILE writes its
// report to a file; the global -json (before "bench") prints the report on
// stdout instead of the table.
func (e *env) bench(args []string) error {
	if e.json {
		args = append([]string{"-json", "-"}, args...)
	}
	if helpAsked(args) {
		// Help asked for goes to stdout; bench needs no database for it.
		if code := bench.Main(e.ctx, "", args, e.stdout, e.stdout); code != ExitOK {
			return exitStatus(code)
		}
		return nil
	}
	db, err := e.explicitDatabase()
	if err != nil {
		return err
	}
	// The bench opens the database itself; only what is wrong with the
	// string is refused here, as a usage error.
	if path, ok := db.src().SQLitePath(); ok {
		if strings.TrimSpace(path) == "" {
			return fmt.Errorf("%w: %s: sqlite: needs a file path (sqlite:./acidic.db)", errUsage, db.source)
		}
	} else if _, err := db.config(); err != nil {
		return err
	}
	if code := bench.Main(e.ctx, db.conn, args, e.stdout, e.stderr); code != ExitOK {
		return exitStatus(code)
	}
	return nil
}

// helpAsked reports whether args ask for help (bench prints it and uses no
// database).
func helpAsked(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--h", "--help":
			return true
		case "--":
			return false
		}
	}
	return false
}
