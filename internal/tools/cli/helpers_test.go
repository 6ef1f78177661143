package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/internal/tools/cli"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/storage/sqlite"
)

// result is what one run of the command did.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the command in-process with args and an environment holding
// only env (nil: none at all).
func runCLI(ctx context.Context, env map[string]string, args ...string) result {
	var stdout, stderr bytes.Buffer
	c := cli.Command{Stdout: &stdout, Stderr: &stderr, LookupEnv: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}}
	code := c.Run(ctx, args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// shell runs the command in-process against one schema.
type shell struct {
	t    *testing.T
	ctx  context.Context
	base []string // -database and -schema
}

// run runs the command with the schema's flags first.
func (a shell) run(args ...string) result {
	return runCLI(a.ctx, nil, append(slices.Clone(a.base), args...)...)
}

// text runs the command and returns what it printed, failing the test unless
// it exited 0, printed something and wrote nothing on stderr.
func (a shell) text(args ...string) string {
	a.t.Helper()
	r := a.run(args...)
	if r.code != 0 || r.stderr != "" || r.stdout == "" {
		a.t.Fatalf("acidic %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// json runs the command with -json and decodes its output, one JSON value
// with no field v lacks, into v. It returns the output.
func (a shell) json(v any, args ...string) string {
	a.t.Helper()
	out := a.text(append([]string{"-json"}, args...)...)
	decodeStrict(a.t, out, v)
	return out
}

// decodeStrict decodes out, one JSON value with no field v lacks, into v.
func decodeStrict(t *testing.T, out string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, out)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value\n%s", out)
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

// columns checks that every line of a table starts its cells at the
// columns of the header's words: the table is aligned.
func columns(t *testing.T, what, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var starts []int
	for i, c := range lines[0] {
		if c != ' ' && (i == 0 || lines[0][i-1] == ' ') && (i < 2 || lines[0][i-2] == ' ') {
			starts = append(starts, i)
		}
	}
	for _, l := range lines[1:] {
		r := []rune(l)
		for _, s := range starts[1:] {
			if s >= len(r) {
				break // empty trailing cells
			}
			if r[s-1] != ' ' {
				t.Errorf("%s: line %q: no column break before position %d\n%s", what, l, s, out)
				break
			}
		}
	}
}

// detail parses a detail view (label, value; JSON values indented under
// their label) up to its first empty line, and returns its fields and what
// follows.
func detail(t *testing.T, out string) (map[string]string, string) {
	t.Helper()
	head, rest, _ := strings.Cut(out, "\n\n")
	fields := map[string]string{}
	last := ""
	for _, l := range strings.Split(head, "\n") {
		if strings.HasPrefix(l, " ") {
			if last == "" {
				t.Fatalf("detail: continuation line first: %q\n%s", l, out)
			}
			fields[last] += "\n" + strings.TrimSpace(l)
			continue
		}
		label, value := l, ""
		if len(l) > 16 {
			label, value = l[:16], l[16:]
		}
		last = strings.TrimSpace(label)
		fields[last] = strings.TrimSpace(value)
	}
	return fields, rest
}

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

// binary builds cmd/acidic into a temporary directory of the test and
// returns its path.
func binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "acidic")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/acidic-go/acidic/cmd/acidic").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/acidic: %v\n%s", err, out)
	}
	return bin
}

// exe runs the built binary with args and exactly the environment env
// (plus PATH and HOME, which Go needs), in a directory of its own (where
// the default store, ./acidic.db, would be), and returns what it did.
func exe(t *testing.T, bin string, env []string, args ...string) result {
	t.Helper()
	return exeIn(t, t.TempDir(), bin, env, args...)
}

// exeIn is exe in the directory dir.
func exeIn(t *testing.T, dir, bin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run acidic %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// dbFlags are the flags that point the command at drv's store: -database
// and -schema on PostgreSQL, -database sqlite:PATH on SQLite.
func dbFlags(drv storage.Driver) []string {
	if s, ok := drv.(*sqlite.Driver); ok {
		return []string{"-database", "sqlite:" + s.Path()}
	}
	return []string{"-database", testdb.URL(), "-schema", drv.Schema()}
}

// place is how the command names drv's store in its messages.
func place(drv storage.Driver) string {
	if s, ok := drv.(*sqlite.Driver); ok {
		return "file " + s.Path()
	}
	return "schema " + drv.Schema()
}
