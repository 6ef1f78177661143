package testdb

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/acidic-go/acidic/storage/sqlite"
)

// SQLite returns a driver on a fresh, migrated SQLite file in the test's
// temporary directory, closed (and removed with the directory) when the
// test ends: the SQLite counterpart of New, for tests that run on both
// drivers. opts may tune the driver (its Migrate is always set).
func SQLite(t testing.TB, opts sqlite.Options) *sqlite.Driver {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts.Migrate = true
	drv, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "acidic.db"), opts)
	if err != nil {
		t.Fatalf("testdb: open a SQLite file: %v", err)
	}
	t.Cleanup(func() { _ = drv.Close() })
	return drv
}
