package sqlite_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/sqlite"
	"github.com/acidic-go/acidic/storage/storagetest"
)

// TestConformance runs the driver conformance suite, each test on a fresh
// file of its own.
func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) storage.Driver { return newDriver(t, sqlite.Options{}) })
}

// newDriver opens a migrated driver on a new file in t's temporary
// directory, closed when t ends.
func newDriver(t testing.TB, opts sqlite.Options) *sqlite.Driver {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts.Migrate = true
	drv, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "acidic.db"), opts)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { _ = drv.Close() })
	return drv
}

// newID returns a fresh run id.
func newID() uuid.UUID { return uuid.New() }

// discard is a logger that drops everything.
func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
