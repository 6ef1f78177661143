package testdb

import (
	"os"
	"strings"
	"testing"

	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/sqlite"
)

// The drivers Each runs a test on, by the names its subtests take.
const (
	PostgreSQL = "postgres"
	SQLiteName = "sqlite"
)

// Drivers lists the drivers Each runs on: both, unless ACIDIC_TEST_DRIVERS
// names fewer (a comma-separated list of "postgres" and "sqlite"), which
// helps when one driver's half is being worked on.
func Drivers() []string {
	v := os.Getenv("ACIDIC_TEST_DRIVERS")
	if v == "" {
		return []string{PostgreSQL, SQLiteName}
	}
	var out []string
	for _, name := range strings.Split(v, ",") {
		switch name = strings.TrimSpace(name); name {
		case PostgreSQL, SQLiteName:
			out = append(out, name)
		}
	}
	return out
}

// Driver returns a fresh, migrated store of the named driver for t: a new
// schema of the test database for "postgres" (New with opts), a new file in
// t's temporary directory for "sqlite" (opts.MaxConns is PostgreSQL's
// alone; opts.Unmigrated and opts.User are honoured on PostgreSQL only).
func Driver(t testing.TB, name string, opts Options) storage.Driver {
	t.Helper()
	switch name {
	case PostgreSQL:
		return New(t, opts)
	case SQLiteName:
		return SQLite(t, sqlite.Options{})
	}
	t.Fatalf("testdb: unknown driver %q", name)
	return nil
}

// Each runs f once per driver (see Drivers), each in a parallel subtest
// named after the driver, with a fresh store of that driver: the way a test
// of code that works on any driver proves it does, on both.
//
// The subtest is marked parallel before its store is opened, so a subtest
// waiting for its turn holds no connection (f must not call t.Parallel
// again). Otherwise every waiting test of a package would hold a pool of
// the test database, and together exhaust its connections.
func Each(t *testing.T, opts Options, f func(t *testing.T, drv storage.Driver)) {
	t.Helper()
	for _, name := range Drivers() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, Driver(t, name, opts))
		})
	}
}
