package storagetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/migrations"
	"github.com/acidic-go/acidic/storage"
)

// The migration primitives (storage.Migrations) and package migrations
// running the driver's own files through them. The suite's extra migration
// is SQL any SQL store runs: SELECT 1.

var migrateTests = []conformanceTest{
	{"MigrationFiles", testMigrationFiles},
	{"MigrationLockedRecord", testMigrationLockedRecord},
	{"MigrationApplyRevert", testMigrationApplyRevert},
	{"MigrationLockedRollsBack", testMigrationLockedRollsBack},
	{"MigrationLockedExcludes", testMigrationLockedExcludes},
	{"Migrator", testMigrator},
}

// applied runs MigrationLocked without creating anything and returns the
// store's record.
func applied(ctx context.Context, t *testing.T, drv storage.Driver) []storage.AppliedMigration {
	t.Helper()
	var out []storage.AppliedMigration
	err := drv.MigrationLocked(ctx, storage.MigrationLockedParams{
		Func: func(_ context.Context, _ storage.MigrationTx, a []storage.AppliedMigration) error {
			out = a
			return nil
		},
	})
	if err != nil {
		t.Fatalf("MigrationLocked: %v", err)
	}
	return out
}

func versionsOf(as []storage.AppliedMigration) []int {
	vs := make([]int, len(as))
	for i, a := range as {
		vs[i] = a.Version
	}
	return vs
}

// loadFiles loads the driver's migration files.
func loadFiles(t *testing.T, drv storage.Driver) []migrations.Migration {
	t.Helper()
	ms, err := migrations.Load(drv.MigrationFiles())
	if err != nil {
		t.Fatalf("the driver's migration files: %v", err)
	}
	return ms
}

// extra is the suite's migration past the driver's last.
func extra(latest int) storage.MigrationApplyParams {
	return storage.MigrationApplyParams{Version: latest + 1, Name: "storagetest", SQL: "SELECT 1"}
}

// testMigrationFiles: the driver's files are well formed (NNNN_name, an up
// and a down file for each version, 1..n without gaps) and the same on
// every call.
func testMigrationFiles(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	drv := newDriver(t)
	first := loadFiles(t, drv)
	if again := loadFiles(t, drv); !slices.Equal(first, again) {
		t.Error("MigrationFiles differs between calls")
	}
}

// testMigrationLockedRecord: a migrated store records every version of the
// driver's files, by ascending version, with its name and when it was
// applied; Create on an existing record changes nothing.
func testMigrationLockedRecord(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	files := loadFiles(t, drv)
	record := applied(ctx, t, drv)
	if len(record) != len(files) {
		t.Fatalf("the record holds versions %v, want the %d of the files", versionsOf(record), len(files))
	}
	for i, a := range record {
		if a.Version != files[i].Version || a.Name != files[i].Name || a.AppliedAt.IsZero() {
			t.Errorf("record[%d] = %+v, want version %d named %q with its time", i, a, files[i].Version, files[i].Name)
		}
	}
	var created []storage.AppliedMigration
	if err := drv.MigrationLocked(ctx, storage.MigrationLockedParams{Create: true,
		Func: func(_ context.Context, _ storage.MigrationTx, a []storage.AppliedMigration) error {
			created = a
			return nil
		}}); err != nil {
		t.Fatalf("MigrationLocked with Create: %v", err)
	}
	if !slices.Equal(created, record) {
		t.Errorf("with Create the record is %+v, want %+v", created, record)
	}
}

// testMigrationApplyRevert: MigrationApply runs the SQL and records the
// version; MigrationRevert runs the SQL and removes it; both commit with
// the transaction.
func testMigrationApplyRevert(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	before := applied(ctx, t, drv)
	next := extra(len(before))
	err := drv.MigrationLocked(ctx, storage.MigrationLockedParams{Create: true,
		Func: func(ctx context.Context, tx storage.MigrationTx, _ []storage.AppliedMigration) error {
			return tx.MigrationApply(ctx, next)
		}})
	if err != nil {
		t.Fatalf("MigrationApply: %v", err)
	}
	after := applied(ctx, t, drv)
	if len(after) != len(before)+1 || !slices.Equal(after[:len(before)], before) {
		t.Fatalf("after MigrationApply the record is %v, want %v and %d", versionsOf(after), versionsOf(before), next.Version)
	}
	if last := after[len(after)-1]; last.Version != next.Version || last.Name != next.Name || last.AppliedAt.IsZero() {
		t.Errorf("the applied version is recorded as %+v, want version %d named %q with its time", last, next.Version, next.Name)
	}
	err = drv.MigrationLocked(ctx, storage.MigrationLockedParams{
		Func: func(ctx context.Context, tx storage.MigrationTx, _ []storage.AppliedMigration) error {
			return tx.MigrationRevert(ctx, storage.MigrationRevertParams{Version: next.Version, SQL: "SELECT 1"})
		}})
	if err != nil {
		t.Fatalf("MigrationRevert: %v", err)
	}
	if got := applied(ctx, t, drv); !slices.Equal(got, before) {
		t.Errorf("after MigrationRevert the record is %v, want %v", versionsOf(got), versionsOf(before))
	}
	// Bad SQL fails the call, and what the transaction did is undone.
	err = drv.MigrationLocked(ctx, storage.MigrationLockedParams{
		Func: func(ctx context.Context, tx storage.MigrationTx, _ []storage.AppliedMigration) error {
			if err := tx.MigrationApply(ctx, next); err != nil {
				return err
			}
			return tx.MigrationApply(ctx, storage.MigrationApplyParams{Version: next.Version + 1, Name: "bad", SQL: "NOT SQL AT ALL"})
		}})
	if err == nil {
		t.Fatal("MigrationApply of SQL the store cannot run succeeded")
	}
	if got := applied(ctx, t, drv); !slices.Equal(got, before) {
		t.Errorf("after a failed MigrationApply the record is %v, want %v", versionsOf(got), versionsOf(before))
	}
}

// testMigrationLockedRollsBack: an error or a panic of Func rolls back what
// it applied and releases the lock.
func testMigrationLockedRollsBack(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	before := applied(ctx, t, drv)
	next := extra(len(before))
	apply := func(fail func() error) storage.MigrationLockedParams {
		return storage.MigrationLockedParams{Create: true,
			Func: func(ctx context.Context, tx storage.MigrationTx, _ []storage.AppliedMigration) error {
				if err := tx.MigrationApply(ctx, next); err != nil {
					t.Errorf("MigrationApply: %v", err)
				}
				return fail()
			}}
	}
	if err := drv.MigrationLocked(ctx, apply(func() error { return errBoom })); !errors.Is(err, errBoom) {
		t.Fatalf("MigrationLocked with a failing Func = %v, want its error", err)
	}
	if got := applied(ctx, t, drv); !slices.Equal(got, before) {
		t.Errorf("after Func failed the record is %v, want %v", versionsOf(got), versionsOf(before))
	}
	func() {
		defer func() {
			if p := recover(); p != errBoom {
				t.Errorf("recovered %v, want Func's panic", p)
			}
		}()
		_ = drv.MigrationLocked(ctx, apply(func() error { panic(errBoom) }))
	}()
	// The lock is free again: this would wait until ctx ends otherwise.
	if got := applied(ctx, t, drv); !slices.Equal(got, before) {
		t.Errorf("after Func panicked the record is %v, want %v", versionsOf(got), versionsOf(before))
	}
}

// testMigrationLockedExcludes: MigrationLocked calls on one store do not
// overlap. A call made while another's Func runs enters its own Func only
// after the first has ended; and of several calls that each apply the next
// version unless it is recorded, exactly one applies it, and none fails.
func testMigrationLockedExcludes(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)

	var firstInside atomic.Bool
	entered := make(chan bool, 1) // whether the first Func was still running
	second := make(chan error, 1)
	err := drv.MigrationLocked(ctx, storage.MigrationLockedParams{
		Func: func(context.Context, storage.MigrationTx, []storage.AppliedMigration) error {
			firstInside.Store(true)
			defer firstInside.Store(false)
			go func() {
				second <- drv.MigrationLocked(ctx, storage.MigrationLockedParams{
					Func: func(context.Context, storage.MigrationTx, []storage.AppliedMigration) error {
						entered <- firstInside.Load()
						return nil
					}})
			}()
			// The first Func holds the lock a moment: a store without one
			// lets the second call in meanwhile. (A correct driver passes
			// however long this is.)
			select {
			case <-entered:
				t.Error("a second MigrationLocked ran its Func while the first held the lock")
			case <-time.After(200 * time.Millisecond):
			}
			return nil
		}})
	if err != nil {
		t.Fatalf("MigrationLocked: %v", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("the second MigrationLocked: %v", err)
	}
	select {
	case overlapped := <-entered:
		if overlapped {
			t.Error("the second MigrationLocked ran its Func while the first's ran")
		}
	default:
		// It entered during the first Func: reported above.
	}

	next := extra(len(applied(ctx, t, drv)))
	const n = 6
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		mu      sync.Mutex
		winners int
		errs    []error
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			won := false
			err := drv.MigrationLocked(ctx, storage.MigrationLockedParams{Create: true,
				Func: func(ctx context.Context, tx storage.MigrationTx, a []storage.AppliedMigration) error {
					won = false // Func may run again if the driver retries
					if slices.Contains(versionsOf(a), next.Version) {
						return nil
					}
					won = true
					return tx.MigrationApply(ctx, next)
				}})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if won {
				winners++
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 || winners != 1 {
		t.Fatalf("%d calls applied version %d, want exactly 1; errors: %v", winners, next.Version, errs)
	}
	if got := versionsOf(applied(ctx, t, drv)); !slices.Contains(got, next.Version) {
		t.Errorf("the record %v lacks version %d", got, next.Version)
	}
}

// testMigrator: package migrations, which knows only storage.Migrations,
// reports the migrated store current, reverts every migration and applies
// them again, and the store then works.
func testMigrator(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	m := migrations.New(drv)
	all := make([]int, m.Latest())
	for i := range all {
		all[i] = i + 1
	}
	st, err := m.Status(ctx)
	if err != nil || len(st) != len(all) {
		t.Fatalf("Status = %d entries, %v; want %d", len(st), err, len(all))
	}
	for _, s := range st {
		if !s.Applied {
			t.Errorf("version %d is not applied on a migrated store", s.Version)
		}
	}
	if got, err := m.Up(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Up on a migrated store = %v, %v; want nothing applied", got, err)
	}
	got, err := m.Down(ctx, 0)
	want := slices.Clone(all)
	slices.Reverse(want)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("Down(0) = %v, %v; want %v", got, err, want)
	}
	if record := applied(ctx, t, drv); len(record) != 0 {
		t.Fatalf("after Down(0) the record holds %v", versionsOf(record))
	}
	if got, err := m.Up(ctx); err != nil || !slices.Equal(got, all) {
		t.Fatalf("Up after Down(0) = %v, %v; want %v", got, err, all)
	}
	ids := insertJobs(ctx, t, drv, job("q"))
	if _, err := drv.JobGet(ctx, storage.JobGetParams{ID: ids[0].ID}); err != nil {
		t.Fatalf("JobGet on the store migrated again: %v", err)
	}
	if jobs := listJobs(ctx, t, drv, acidic.JobFilter{}); len(jobs) != 1 {
		t.Errorf("the store migrated again lists %d jobs, want 1", len(jobs))
	}
}
