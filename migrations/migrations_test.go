package migrations_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/migrations"
	"github.com/acidic-go/acidic/storage"
)

// The driver-neutral part of migrating: loading and checking a driver's
// files, and what Up, Down and Status decide from the versions a store has
// applied. The tests reach the store only through storage.Migrations (on
// the PostgreSQL driver, the one at hand); what the migrations make in a
// PostgreSQL schema is tested with the driver (storage/postgres/migrate_test.go).

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// files makes a migration file system: name → SQL.
func files(named map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, body := range named {
		fsys[name] = &fstest.MapFile{Data: []byte(body)}
	}
	return fsys
}

func TestLoad(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"0001_first.up.sql": "up 1", "0001_first.down.sql": "down 1",
		"0002_second.up.sql": "up 2", "0002_second.down.sql": "down 2",
		"3_unpadded_name.up.sql": "up 3", "3_unpadded_name.down.sql": "down 3",
		"README.md": "ignored", "0004_notes.txt": "ignored",
	}
	ms, err := migrations.Load(files(good))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []migrations.Migration{
		{Version: 1, Name: "first", Up: "up 1", Down: "down 1"},
		{Version: 2, Name: "second", Up: "up 2", Down: "down 2"},
		{Version: 3, Name: "unpadded_name", Up: "up 3", Down: "down 3"},
	}
	if !slices.Equal(ms, want) {
		t.Fatalf("Load = %+v, want %+v", ms, want)
	}

	with := func(change map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range good {
			out[k] = v
		}
		for k, v := range change {
			if v == "" {
				delete(out, k)
			} else {
				out[k] = v
			}
		}
		return out
	}
	for _, c := range []struct {
		name    string
		files   map[string]string
		mention string
	}{
		{"no files", map[string]string{"README.md": "x"}, "no migration files"},
		{"a name without a version", with(map[string]string{"first.up.sql": "x"}), `"first.up.sql" is not named NNNN_name.up.sql`},
		{"a version that is not a number", with(map[string]string{"000x_bad.down.sql": "x"}), `"000x_bad.down.sql": bad version`},
		{"an up file alone", with(map[string]string{"0004_fourth.up.sql": "up 4"}), "version 4 needs both an up and a down file"},
		{"a down file alone", with(map[string]string{"0002_second.up.sql": ""}), "version 2 needs both an up and a down file"},
		{"a gap", with(map[string]string{"0005_fifth.up.sql": "up 5", "0005_fifth.down.sql": "down 5"}), "found 5 at position 4"},
		{"not from 1", map[string]string{"0002_second.up.sql": "up 2", "0002_second.down.sql": "down 2"}, "found 2 at position 1"},
		{"one version, two names", with(map[string]string{"0004_cron.up.sql": "up", "0004_cron.down.sql": "down", "0004_limits.up.sql": "up", "0004_limits.down.sql": "down"}), `version 4 has files of two names, "cron" and "limits"`},
		{"one version, two up files", with(map[string]string{"4_fourth.up.sql": "up", "0004_fourth.up.sql": "up", "0004_fourth.down.sql": "down"}), "version 4 has two up files"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ms, err := migrations.Load(files(c.files))
			if err == nil || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("Load = %v, %v; want an error saying %q", ms, err, c.mention)
			}
		})
	}
	// An empty file counts as missing.
	empty := files(good)
	empty["0002_second.down.sql"] = &fstest.MapFile{}
	if ms, err := migrations.Load(empty); err == nil || !strings.Contains(err.Error(), "version 2 needs both") {
		t.Fatalf("Load with an empty down file = %v, %v", ms, err)
	}
}

// extended is a driver whose build knows more migrations than the driver
// it wraps: the driver's files and extra ones. Everything else is the
// driver's, through storage.Migrations only.
type extended struct {
	storage.Migrations
	extra map[string]string
}

func (e extended) MigrationFiles() fs.FS {
	fsys := fstest.MapFS{}
	base := e.Migrations.MigrationFiles()
	entries, err := fs.ReadDir(base, ".")
	if err != nil {
		panic(err)
	}
	for _, entry := range entries {
		body, err := fs.ReadFile(base, entry.Name())
		if err != nil {
			panic(err)
		}
		fsys[entry.Name()] = &fstest.MapFile{Data: body}
	}
	for name, body := range e.extra {
		fsys[name] = &fstest.MapFile{Data: []byte(body)}
	}
	return fsys
}

// future adds version latest+1, which any SQL database runs: a newer build.
func future(drv storage.Migrations, latest int) extended {
	name := fmt.Sprintf("%04d_from_the_future", latest+1)
	return extended{Migrations: drv, extra: map[string]string{name + ".up.sql": "SELECT 1", name + ".down.sql": "SELECT 1"}}
}

func status(ctx context.Context, t *testing.T, m *migrations.Migrator) []migrations.Status {
	t.Helper()
	st, err := m.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	return st
}

// TestNewerStoreIsRefused: a store a newer build migrated (it has a version
// this build does not know) is refused by Up and Down with a
// *NewerStoreError naming the version, and neither writes anything; Status
// still reads it.
func TestNewerStoreIsRefused(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{MaxConns: 2})
	old := migrations.New(drv)
	latest := old.Latest()
	newer := migrations.New(future(drv, latest))
	if got := newer.Latest(); got != latest+1 {
		t.Fatalf("the newer build's Latest = %d, want %d", got, latest+1)
	}
	if applied, err := newer.Up(ctx); err != nil || !slices.Equal(applied, []int{latest + 1}) {
		t.Fatalf("the newer build's Up: %v, %v; want [%d]", applied, err, latest+1)
	}
	before := status(ctx, t, newer)

	check := func(call string, got []int, err error) {
		t.Helper()
		var newerErr *migrations.NewerStoreError
		if !errors.As(err, &newerErr) {
			t.Fatalf("%s on a newer store: %v, %v; want a *NewerStoreError", call, got, err)
		}
		if got != nil {
			t.Errorf("%s returned %v with its error", call, got)
		}
		if vs := newerErr.Versions(); !slices.Equal(vs, []int{latest + 1}) || newerErr.Unknown[0].Name != "from_the_future" || newerErr.Latest != latest {
			t.Errorf("%s: %+v, want version %d (from_the_future) unknown to a build at %d", call, newerErr, latest+1, latest)
		}
		if want := fmt.Sprintf("%d_from_the_future", latest+1); !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %q does not name %s", call, err, want)
		}
	}
	applied, err := old.Up(ctx)
	check("Up", applied, err)
	for _, v := range []int{0, latest - 1, latest} {
		reverted, err := old.Down(ctx, v)
		check(fmt.Sprintf("Down(%d)", v), reverted, err)
	}
	if after := status(ctx, t, newer); !slices.Equal(after, before) {
		t.Errorf("the refused calls changed the store:\nbefore %+v\nafter  %+v", before, after)
	}
	// Status reads what this build knows.
	st := status(ctx, t, old)
	if len(st) != latest || !st[latest-1].Applied {
		t.Errorf("the old build's Status: %+v, want its %d migrations applied", st, latest)
	}

	// Once the newer build reverts its version, the old one works again.
	if reverted, err := newer.Down(ctx, latest); err != nil || !slices.Equal(reverted, []int{latest + 1}) {
		t.Fatalf("the newer build's Down(%d): %v, %v", latest, reverted, err)
	}
	if applied, err := old.Up(ctx); err != nil || len(applied) != 0 {
		t.Fatalf("Up after the newer version was reverted: %v, %v; want nothing applied", applied, err)
	}
}

// counting is a driver that counts MigrationLocked calls.
type counting struct {
	storage.Migrations
	files fs.FS
	calls atomic.Int32
}

func (c *counting) MigrationFiles() fs.FS { return c.files }

func (c *counting) MigrationLocked(ctx context.Context, p storage.MigrationLockedParams) error {
	c.calls.Add(1)
	return c.Migrations.MigrationLocked(ctx, p)
}

// TestBadFilesTouchNothing: files Load refuses make Up, Down and Status
// return its error without reaching the store.
func TestBadFilesTouchNothing(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := &counting{Migrations: testdb.New(t, testdb.Options{MaxConns: 1}), files: files(map[string]string{"0002_gap.up.sql": "SELECT 1", "0002_gap.down.sql": "SELECT 1"})}
	m := migrations.New(drv)
	_, upErr := m.Up(ctx)
	_, downErr := m.Down(ctx, 0)
	_, statusErr := m.Status(ctx)
	for _, err := range []error{upErr, downErr, statusErr} {
		if err == nil || !strings.Contains(err.Error(), "without gaps") {
			t.Errorf("err = %v, want the files' error", err)
		}
	}
	if n := drv.calls.Load(); n != 0 {
		t.Errorf("MigrationLocked called %d times with bad files", n)
	}
	if m.Latest() != 0 || m.Migrations() != nil {
		t.Errorf("Latest = %d, Migrations = %v with bad files; want 0, none", m.Latest(), m.Migrations())
	}
	if _, err := migrations.New(nil).Up(ctx); err == nil {
		t.Error("Up without a driver succeeded")
	}
}

// TestMigrationsIsACopy: callers cannot change the migrator's migrations.
func TestMigrationsIsACopy(t *testing.T) {
	t.Parallel()
	m := migrations.New(testdb.New(t, testdb.Options{MaxConns: 1, Unmigrated: true}))
	ms := m.Migrations()
	if len(ms) != m.Latest() || len(ms) == 0 {
		t.Fatalf("Migrations() has %d, Latest() = %d", len(ms), m.Latest())
	}
	ms[0].Up = "mangled"
	if m.Migrations()[0].Up == "mangled" {
		t.Error("Migrations() shares its slice between calls")
	}
}

func TestNewerStoreErrorText(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		unknown []storage.AppliedMigration
		want    string
	}{
		{[]storage.AppliedMigration{{Version: 10, Name: "cron"}},
			"migrations: version 10_cron is applied but unknown to this build (it knows 1..9): a newer version of Acidic migrated the store"},
		{[]storage.AppliedMigration{{Version: 10, Name: "cron"}, {Version: 11, Name: "limits"}},
			"migrations: versions 10_cron, 11_limits are applied but unknown to this build (it knows 1..9): a newer version of Acidic migrated the store"},
	} {
		err := &migrations.NewerStoreError{Unknown: c.unknown, Latest: 9}
		if got := err.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
}
