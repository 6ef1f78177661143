package cli_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic/internal/testkit/testdb"
)

// secretForm is a connection string holding a password, and the pieces of
// that password no output may show.
type secretForm struct {
	name   string
	conn   string
	pieces []string
}

// secretForms spells a password every way a connection string can hold it.
// The host answers nowhere (port 1), so connecting fails and prints errors.
var secretForms = []secretForm{
	{"URL", "postgres://app:Sek1rTz9Qw@127.0.0.1:1/db?sslmode=disable", []string{"Sek1rTz9Qw"}},
	{"postgresql scheme", "postgresql://app:Sek1rTz9Qw@127.0.0.1:1/db?sslmode=disable", []string{"Sek1rTz9Qw"}},
	{"password with a raw @", "postgres://app:Sek1r@Tz9Qw@127.0.0.1:1/db?sslmode=disable", []string{"Sek1r", "Tz9Qw"}},
	{"password with an encoded @", "postgres://app:Sek1r%40Tz9Qw@127.0.0.1:1/db?sslmode=disable", []string{"Sek1r", "Tz9Qw"}},
	{"password with a :", "postgres://app:Sek1r:Tz9Qw@127.0.0.1:1/db?sslmode=disable", []string{"Sek1r", "Tz9Qw"}},
	{"password with a raw /", "postgres://app:Sek1r/Tz9Qw@127.0.0.1:1/db?sslmode=disable", []string{"Sek1r", "Tz9Qw"}},
	{"password with an encoded /", "postgres://app:Sek1r%2FTz9Qw@127.0.0.1:1/db?sslmode=disable", []string{"Sek1r", "Tz9Qw"}},
	{"password query parameter", "postgres://app@127.0.0.1:1/db?sslmode=disable&password=Sek1rTz9Qw", []string{"Sek1rTz9Qw"}},
	{"key=value", "host=127.0.0.1 port=1 password=Sek1rTz9Qw user=app dbname=db sslmode=disable", []string{"Sek1rTz9Qw"}},
	{"quoted key=value", "host=127.0.0.1 port=1 password='Sek1r Tz9Qw' user=app dbname=db sslmode=disable", []string{"Sek1r", "Tz9Qw"}},
	{"malformed URL", "postgres://app:Sek1rTz9Qw@[::1", []string{"Sek1rTz9Qw"}},
	{"malformed key=value", "host=127.0.0.1 password='Sek1rTz9Qw user=app", []string{"Sek1rTz9Qw"}},
	{"key=value with an unquoted space", "host=127.0.0.1 port=1 password=Sek1r Tz9Qw user=app", []string{"Sek1r", "Tz9Qw"}},
}

// leaks returns the pieces of the password that out shows, in any
// spelling a URL gives them.
func (f secretForm) leaks(out string) []string {
	var found []string
	for _, p := range f.pieces {
		for _, spelling := range []string{p, url.QueryEscape(p), url.PathEscape(p)} {
			if strings.Contains(out, spelling) {
				found = append(found, spelling)
				break
			}
		}
	}
	return found
}

// TestPasswordIsNeverPrinted gives the command a password in every form a
// connection string can hold it, through DATABASE_URL and through
// -database, and checks the bytes of everything it prints: help, usage
// errors, connection errors, parse errors, JSON, bench's JSON report.
func TestPasswordIsNeverPrinted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	calls := [][]string{
		{"-h"}, {"help"}, {}, {"-nope"}, {"help", "runs", "list"}, {"runs", "list", "-h"},
		{"runs", "list", "-state", "bogus"}, {"queues", "extra"},
		{"queues"}, {"-json", "runs", "list"}, {"migrate", "status"}, {"runs", "get", "0b6c3e2e-4a57-4a8c-9b7d-3f2a1c0e9d11"},
		{"bench", "-quick", "-q", "-scenario", "enqueue", "-json", filepath.Join(dir, "bench.json")},
		{"-json", "bench", "-quick", "-q", "-scenario", "enqueue"},
	}
	for _, f := range secretForms {
		for _, viaEnv := range []bool{true, false} {
			for _, call := range calls {
				os.Remove(filepath.Join(dir, "bench.json"))
				var r result
				what := f.name + " via -database: acidic " + strings.Join(call, " ")
				if viaEnv {
					what = f.name + " via DATABASE_URL: acidic " + strings.Join(call, " ")
					r = runCLI(ctx, map[string]string{"DATABASE_URL": f.conn}, call...)
				} else {
					r = runCLI(ctx, nil, append([]string{"-database", f.conn}, call...)...)
				}
				if leaked := f.leaks(r.stdout + r.stderr); len(leaked) > 0 {
					t.Errorf("%s: exit %d, prints %q of the password:\nstdout: %s\nstderr: %s", what, r.code, leaked, r.stdout, r.stderr)
				}
				if report, err := os.ReadFile(filepath.Join(dir, "bench.json")); err == nil {
					if leaked := f.leaks(string(report)); len(leaked) > 0 {
						t.Errorf("%s: bench's JSON report holds %q of the password:\n%s", what, leaked, report)
					}
				}
				if r.code == 0 && len(call) > 0 && call[0] != "-h" && call[0] != "help" && !strings.Contains(strings.Join(call, " "), "-h") {
					t.Errorf("%s: exit 0 with a database that does not answer", what)
				}
			}
		}
	}
}

// TestPasswordIsNotPrintedOnSuccess connects with a password in the URL (the
// test database takes any password it does not ask for) and checks that
// output of commands that work shows none of it.
func TestPasswordIsNotPrintedOnSuccess(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: passwords live in PostgreSQL connection strings; a SQLite path holds none.
	drv := testdb.New(t, testdb.Options{MaxConns: 2})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(testdb.URL())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ConnConfig.Password != "" {
		t.Skip("the test database checks passwords")
	}
	u, err := url.Parse(testdb.URL())
	if err != nil || u.Scheme == "" {
		t.Skipf("DATABASE_URL is not a URL: %v", err)
	}
	u.User = url.UserPassword(cfg.ConnConfig.User, "Sek1r@Tz9Qw")
	f := secretForm{conn: u.String(), pieces: []string{"Sek1r", "Tz9Qw"}}
	for _, call := range [][]string{{"queues"}, {"runs", "list"}, {"-json", "jobs", "list"}, {"migrate", "status"}, {"-h"}} {
		r := runCLI(ctx, map[string]string{"DATABASE_URL": f.conn, "ACIDIC_SCHEMA": drv.Schema()}, call...)
		if r.code != 0 {
			t.Errorf("acidic %s: exit %d\n%s", strings.Join(call, " "), r.code, r.stderr)
		}
		if leaked := f.leaks(r.stdout + r.stderr); len(leaked) > 0 {
			t.Errorf("acidic %s: prints %q of the password:\n%s%s", strings.Join(call, " "), leaked, r.stdout, r.stderr)
		}
	}
}
