// Package exampletest runs an example's program the way a user does: built,
// started in an empty directory, with an environment that names one store
// (a test's) and no other database. The examples' tests use it to prove a
// program runs on both drivers with nothing but the variables the README
// gives: on SQLite with ACIDIC_DB alone (no DATABASE_URL, no PG*
// variables), on PostgreSQL with DATABASE_URL and ACIDIC_SCHEMA.
package exampletest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/sqlite"
)

// Build builds the program in dir (relative to the test's working
// directory: "." for the example under test) and returns its path. It skips
// the test under -short, or when go is not on PATH.
func Build(t *testing.T, dir string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the program")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(abs))
	cmd := exec.Command(goBin, "build", "-o", bin, ".")
	cmd.Dir = abs
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, out)
	}
	return bin
}

// Env is the environment of a program that works on drv's store: the
// test's, without any variable that names a database (DATABASE_URL,
// ACIDIC_*, PG*), plus ACIDIC_DB alone for SQLite, or DATABASE_URL and
// ACIDIC_SCHEMA for PostgreSQL.
func Env(drv storage.Driver) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "DATABASE_URL" || strings.HasPrefix(k, "ACIDIC_") || strings.HasPrefix(k, "PG") {
			continue
		}
		env = append(env, kv)
	}
	if s, ok := drv.(*sqlite.Driver); ok {
		return append(env, "ACIDIC_DB="+s.Path())
	}
	return append(env, "DATABASE_URL="+testdb.URL(), "ACIDIC_SCHEMA="+drv.Schema())
}

// StoreLine is what a program that prints its store (storeurl.Source's
// String) says of drv's store when started with Env(drv).
func StoreLine(drv storage.Driver) string {
	if s, ok := drv.(*sqlite.Driver); ok {
		return "store: SQLite file " + s.Path() + " (ACIDIC_DB)"
	}
	return "store: PostgreSQL (DATABASE_URL)"
}

// Run runs the program bin with args on drv's store (Env) in a new empty
// directory, and returns its output (stdout and stderr) and exit status,
// both logged. It fails the test if the program made ./acidic.db there:
// its environment names the store to use, and no other.
func Run(t *testing.T, bin string, drv storage.Driver, args ...string) (out string, status int) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Dir = Env(drv), dir
	b, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run %s: %v", filepath.Base(bin), err)
	}
	status = cmd.ProcessState.ExitCode()
	t.Logf("%s %s: exit %d\n%s", filepath.Base(bin), strings.Join(args, " "), status, b)
	if _, err := os.Stat(filepath.Join(dir, "acidic.db")); err == nil {
		t.Errorf("%s made ./acidic.db: its environment names the test's store", filepath.Base(bin))
	}
	return string(b), status
}
