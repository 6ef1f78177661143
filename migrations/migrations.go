package migrations

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/acidic-go/acidic/storage"
)

// ErrUnknownVersion is returned by Down when asked to go to a version that no
// migration has.
var ErrUnknownVersion = errors.New("migrations: unknown version")

// NewerStoreError is returned by Up and Down, which then change nothing,
// when the store has versions applied that this build does not know: a
// newer version of Acidic migrated it. Run that version (its Down reverts
// them), or upgrade.
type NewerStoreError struct {
	// Unknown are the applied versions this build does not know, by
	// ascending version.
	Unknown []storage.AppliedMigration
	// Latest is the highest version this build knows.
	Latest int
}

func (e *NewerStoreError) Error() string {
	names := make([]string, len(e.Unknown))
	for i, a := range e.Unknown {
		names[i] = fmt.Sprintf("%d_%s", a.Version, a.Name)
	}
	what := "version " + names[0] + " is"
	if len(names) > 1 {
		what = "versions " + strings.Join(names, ", ") + " are"
	}
	return fmt.Sprintf("migrations: %s applied but unknown to this build (it knows 1..%d): a newer version of Acidic migrated the store",
		what, e.Latest)
}

// Versions returns the unknown versions, ascending.
func (e *NewerStoreError) Versions() []int {
	vs := make([]int, len(e.Unknown))
	for i, a := range e.Unknown {
		vs[i] = a.Version
	}
	return vs
}

// Migration is one versioned change to the store.
type Migration struct {
	// Version orders migrations; it starts at 1 and has no gaps.
	Version int
	// Name describes the change, taken from the file name.
	Name string
	// Up applies the change and Down reverts it: the driver's SQL, as in
	// its files (the PostgreSQL driver's name the schema {schema}).
	Up, Down string
}

// Status tells whether one migration is applied to a store.
type Status struct {
	Migration
	// Applied is true when the migration has been run.
	Applied bool
	// AppliedAt is when it was run; zero when not applied.
	AppliedAt time.Time
}

// Load reads the migrations at the root of fsys (a driver's
// storage.Migrations.MigrationFiles) and returns them in version order. It
// fails when a file ending in .up.sql or .down.sql is not named
// NNNN_name.up.sql or NNNN_name.down.sql, when a version lacks its up or
// its down file or has files of two names (0010_a.up.sql, 0010_b.up.sql),
// when the versions do not run from 1 without gaps, or when there are none.
// An empty file counts as missing. Other files are ignored.
func Load(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("migrations: read files: %w", err)
	}
	byVersion := map[int]*Migration{}
	for _, e := range entries {
		name := e.Name()
		var direction string
		switch {
		case strings.HasSuffix(name, ".up.sql"):
			direction = "up"
		case strings.HasSuffix(name, ".down.sql"):
			direction = "down"
		default:
			continue
		}
		base := strings.TrimSuffix(name, "."+direction+".sql")
		num, label, ok := strings.Cut(base, "_")
		if !ok {
			return nil, fmt.Errorf("migrations: file %q is not named NNNN_name.%s.sql", name, direction)
		}
		version, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migrations: file %q: bad version: %w", name, err)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("migrations: read %s: %w", name, err)
		}
		m := byVersion[version]
		if m == nil {
			m = &Migration{Version: version, Name: label}
			byVersion[version] = m
		}
		// Two branches that each added the next version meet here: refuse
		// rather than run one of them.
		if m.Name != label {
			return nil, fmt.Errorf("migrations: version %d has files of two names, %q and %q", version, m.Name, label)
		}
		text := &m.Up
		if direction == "down" {
			text = &m.Down
		}
		if *text != "" {
			return nil, fmt.Errorf("migrations: version %d has two %s files (the second is %q)", version, direction, name)
		}
		*text = string(body)
	}
	if len(byVersion) == 0 {
		return nil, errors.New("migrations: no migration files")
	}
	out := make([]Migration, 0, len(byVersion))
	for _, m := range byVersion {
		if m.Up == "" || m.Down == "" {
			return nil, fmt.Errorf("migrations: version %d needs both an up and a down file", m.Version)
		}
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migrations: versions must run 1..n without gaps; found %d at position %d", m.Version, i+1)
		}
	}
	return out, nil
}

// Migrator applies and reverts a driver's migrations in the driver's store.
type Migrator struct {
	drv        storage.Migrations
	migrations []Migration
	// err is why the driver's migrations cannot be used (Load); every
	// method that touches the store returns it.
	err error
}

// New returns a Migrator for drv's store (a storage.Driver is one) and drv's
// migrations. Files Load refuses make Up, Down and Status return that error
// without touching the store; a driver's tests rule it out
// (storagetest.Run loads them). So does a store the driver refuses (the
// PostgreSQL driver's invalid schema name, say).
func New(drv storage.Migrations) *Migrator {
	if drv == nil {
		return &Migrator{err: errors.New("migrations: no driver")}
	}
	ms, err := Load(drv.MigrationFiles())
	return &Migrator{drv: drv, migrations: ms, err: err}
}

// Migrations returns the driver's migrations in version order (a copy).
func (m *Migrator) Migrations() []Migration { return append([]Migration(nil), m.migrations...) }

// Latest is the highest version this build knows (0 when the driver's files
// could not be loaded).
func (m *Migrator) Latest() int {
	if len(m.migrations) == 0 {
		return 0
	}
	return m.migrations[len(m.migrations)-1].Version
}

// Up applies every migration not yet applied, in order, and returns the versions
// it applied (none when the store is current). It creates the store and its
// record of versions only when they do not exist, so a store that is current
// needs nothing but the right to read that record: an application role may
// call Up at start-up (see docs/operations.md), and an owner may migrate a
// PostgreSQL schema someone else created without CREATE on the database.
// All of it runs in one transaction: either every pending migration is
// applied or none is. A store with versions applied that this build does not
// know is refused with a *NewerStoreError.
func (m *Migrator) Up(ctx context.Context) ([]int, error) {
	var applied []int
	err := m.locked(ctx, lockCreate, func(ctx context.Context, tx storage.MigrationTx, done map[int]time.Time) error {
		applied = nil // in case the driver runs this again
		for _, mig := range m.migrations {
			if _, ok := done[mig.Version]; ok {
				continue
			}
			if err := tx.MigrationApply(ctx, storage.MigrationApplyParams{Version: mig.Version, Name: mig.Name, SQL: mig.Up}); err != nil {
				return fmt.Errorf("migrations: apply %d_%s: %w", mig.Version, mig.Name, err)
			}
			applied = append(applied, mig.Version)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return applied, nil
}

// Down reverts applied migrations above version, newest first, and returns the
// versions it reverted. Down(ctx, 0) removes every table; the store itself and
// its record of versions stay. On a store that does not exist it reverts
// nothing and creates nothing. A version outside 0..Latest is
// ErrUnknownVersion; a store with versions applied that this build does not
// know is refused with a *NewerStoreError.
func (m *Migrator) Down(ctx context.Context, version int) ([]int, error) {
	if m.err != nil {
		return nil, m.err
	}
	if version < 0 || version > m.Latest() {
		return nil, fmt.Errorf("%w: %d (known: 0..%d)", ErrUnknownVersion, version, m.Latest())
	}
	var reverted []int
	err := m.locked(ctx, lockChange, func(ctx context.Context, tx storage.MigrationTx, done map[int]time.Time) error {
		reverted = nil
		for i := len(m.migrations) - 1; i >= 0; i-- {
			mig := m.migrations[i]
			if mig.Version <= version {
				break
			}
			if _, ok := done[mig.Version]; !ok {
				continue
			}
			if err := tx.MigrationRevert(ctx, storage.MigrationRevertParams{Version: mig.Version, SQL: mig.Down}); err != nil {
				return fmt.Errorf("migrations: revert %d_%s: %w", mig.Version, mig.Name, err)
			}
			reverted = append(reverted, mig.Version)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return reverted, nil
}

// Status lists every known migration and whether it is applied. It only
// reads: a store that does not exist has nothing applied. Versions applied
// that this build does not know are not listed.
func (m *Migrator) Status(ctx context.Context) ([]Status, error) {
	var out []Status
	err := m.locked(ctx, lockRead, func(_ context.Context, _ storage.MigrationTx, done map[int]time.Time) error {
		out = nil
		for _, mig := range m.migrations {
			at, ok := done[mig.Version]
			out = append(out, Status{Migration: mig, Applied: ok, AppliedAt: at})
		}
		return nil
	})
	return out, err
}

// lockMode says what locked does before it runs its function.
type lockMode int

const (
	// lockRead creates nothing and lets versions this build does not know
	// pass (Status).
	lockRead lockMode = iota
	// lockChange creates nothing and refuses a store with versions this
	// build does not know (Down).
	lockChange
	// lockCreate creates the store and its record of versions when missing
	// and refuses a store with versions this build does not know (Up).
	lockCreate
)

// locked runs fn under the store's migration lock with the versions of
// this build applied so far and when each was applied. A store that has no
// record has nothing applied.
func (m *Migrator) locked(ctx context.Context, mode lockMode, fn func(context.Context, storage.MigrationTx, map[int]time.Time) error) error {
	if m.err != nil {
		return m.err
	}
	return m.drv.MigrationLocked(ctx, storage.MigrationLockedParams{
		Create: mode == lockCreate,
		Func: func(ctx context.Context, tx storage.MigrationTx, applied []storage.AppliedMigration) error {
			done := make(map[int]time.Time, len(applied))
			var unknown []storage.AppliedMigration
			for _, a := range applied {
				if a.Version < 1 || a.Version > m.Latest() {
					unknown = append(unknown, a)
					continue
				}
				done[a.Version] = a.AppliedAt
			}
			if len(unknown) > 0 && mode != lockRead {
				sort.Slice(unknown, func(i, j int) bool { return unknown[i].Version < unknown[j].Version })
				return &NewerStoreError{Unknown: unknown, Latest: m.Latest()}
			}
			return fn(ctx, tx, done)
		},
	})
}
