package acidictest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/storage/sqlite"
)

// faultStores hands out a store of its own to every case of EachFault.
type faultStores interface {
	// get returns an empty, migrated store, made ready by FaultOptions.Setup,
	// given back when t ends.
	get(ctx context.Context, t *testing.T) faultStore
}

// faultStore is one case's store. Every engine of the case is a process of
// its own: it gets a driver of its own from open, and its death (or end) is
// stop.
type faultStore interface {
	// open returns a driver on the store for a new process.
	open(ctx context.Context, t *testing.T) storage.Driver
	// stop ends the process that worked through drv: what it had not
	// committed is lost, as after kill -9.
	stop(drv storage.Driver)
	// busy starts another writer in the process of drv, until dead or
	// the returned stop; see sqliteStore.busy.
	busy(drv storage.Driver, dead func() bool) (stop func())
}

// newFaultStores returns the stores of the database proto is a driver on
// (nil: the test database, as NewDriver).
func newFaultStores(t *testing.T, proto storage.Driver, setup func(context.Context, storage.Driver) error) faultStores {
	t.Helper()
	switch d := proto.(type) {
	case nil:
		return pgStores{testdb.NewSchemas(t, nil, 2*faultWorkers, pgSetup(setup))}
	case *postgres.Driver:
		return pgStores{testdb.NewSchemas(t, d, 2*faultWorkers, pgSetup(setup))}
	case *sqlite.Driver:
		return newSQLiteStores(t, setup)
	}
	t.Fatalf("acidictest: EachFault runs on a *postgres.Driver or a *sqlite.Driver, not on %T", proto)
	return nil
}

func pgSetup(setup func(context.Context, storage.Driver) error) func(context.Context, *postgres.Driver) error {
	if setup == nil {
		return nil
	}
	return func(ctx context.Context, drv *postgres.Driver) error { return setup(ctx, drv) }
}

// pgStores are schemas of a PostgreSQL database, reused and emptied between
// cases. Every process of a case shares one pool: a dead process's open
// transaction rolls back on its error path, and nothing it does afterwards
// reaches the database (the fault layer refuses it).
type pgStores struct{ schemas *testdb.Schemas }

func (s pgStores) get(ctx context.Context, t *testing.T) faultStore {
	pg := s.schemas.Get(ctx, t)
	t.Cleanup(func() { s.schemas.Put(pg) })
	return pgStore{pg}
}

type pgStore struct{ drv *postgres.Driver }

func (s pgStore) open(context.Context, *testing.T) storage.Driver { return s.drv }

func (s pgStore) stop(storage.Driver) {}

func (s pgStore) busy(storage.Driver, func() bool) func() { return func() {} }

// sqliteStores are SQLite files, one per case, each a copy of a template
// migrated and made ready by Setup once. Every process of a case opens a
// Driver of its own on the case's file, as a restarted process would.
type sqliteStores struct {
	dir      string
	template string
	n        atomic.Int64
}

func newSQLiteStores(t *testing.T, setup func(context.Context, storage.Driver) error) *sqliteStores {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := &sqliteStores{dir: t.TempDir()}
	s.template = filepath.Join(s.dir, "template.db")
	drv, err := sqlite.Open(ctx, s.template, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatalf("acidictest: open a SQLite file: %v", err)
	}
	if setup != nil {
		if err := setup(ctx, drv); err != nil {
			_ = drv.Close()
			t.Fatalf("Setup: %v", err)
		}
	}
	// Closing the last connection checkpoints the WAL into the file and
	// removes it: the file alone is the store.
	if err := drv.Close(); err != nil {
		t.Fatalf("acidictest: close the SQLite template: %v", err)
	}
	if _, err := os.Stat(s.template + "-wal"); err == nil {
		t.Fatalf("acidictest: the SQLite template kept its WAL after Close")
	}
	return s
}

func (s *sqliteStores) get(ctx context.Context, t *testing.T) faultStore {
	path := filepath.Join(s.dir, fmt.Sprintf("case-%d.db", s.n.Add(1)))
	if err := copyFile(s.template, path); err != nil {
		t.Fatalf("acidictest: copy the SQLite template: %v", err)
	}
	st := &sqliteStore{path: path}
	t.Cleanup(func() {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			_ = os.Remove(path + suffix)
		}
	})
	return st
}

type sqliteStore struct{ path string }

func (s *sqliteStore) open(ctx context.Context, t *testing.T) storage.Driver {
	drv, err := sqlite.Open(ctx, s.path, sqlite.Options{})
	if err != nil {
		t.Fatalf("acidictest: open %s: %v", s.path, err)
	}
	t.Cleanup(func() { _ = drv.Close() })
	return drv
}

// stop closes the process's driver. The process works in the test's
// goroutine, so no call of it is under way by then: each transaction it had
// open when it died ended on its error path and rolled back, as SQLite rolls
// back the transaction of a connection that dies, and the file holds what it
// had committed.
func (s *sqliteStore) stop(drv storage.Driver) { _ = drv.(*sqlite.Driver).Close() }

// busy starts a goroutine that writes on drv, through no fault, in
// transactions of its own one after another until the process is dead or
// stop is called: another writer of the process, so that the engine's
// transactions end while it waits for the writer (or begin while it holds
// it) and commit in groups with it (group commit, storage/sqlite). Its
// transactions change no row.
//
// A process that dies loses its open group, members that ended in it
// included, as kill -9 would: the first transaction of this writer to see
// the process dead rolls back the whole SQLite transaction it runs in, so
// the members waiting in it learn that nothing of theirs was written (no
// member was told it committed), and stops. (Members whose group another
// commits first are, as they would be had the process died a moment
// later.)
func (s *sqliteStore) busy(drv storage.Driver, dead func() bool) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			err := drv.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
				if dead() {
					_, _ = storage.SQLOf(tx).Exec(ctx, "ROLLBACK")
					return errCrashed
				}
				_, err := tx.JobMakeDue(ctx, storage.JobMakeDueParams{Queue: "acidictest-busy"})
				return err
			})
			if dead() || (err != nil && ctx.Err() == nil && errors.Is(err, acidic.ErrClosed)) {
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	return func() { cancel(); <-done }
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
