package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultSchema is the schema used when none is given.
const DefaultSchema = "acidic"

//go:embed postgres/*.sql
var postgresFiles embed.FS

// ErrUnknownVersion is returned by Down when asked to go to a version that no
// migration has.
var ErrUnknownVersion = errors.New("migrations: unknown version")

// Migration is one versioned change to the schema.
type Migration struct {
	// Version orders migrations; it starts at 1 and has no gaps.
	Version int
	// Name describes the change, taken from the file name.
	Name string
	// Up applies the change and Down reverts it. Both contain the placeholder
	// {schema}, replaced by the quoted schema name before they run.
	Up, Down string
}

// Status tells whether one migration is applied to a schema.
type Status struct {
	Migration
	// Applied is true when the migration has been run.
	Applied bool
	// AppliedAt is when it was run; zero when not applied.
	AppliedAt time.Time
}

// All returns the embedded migrations in version order.
func All() []Migration {
	ms, err := load(postgresFiles, "postgres")
	if err != nil {
		// The files are compiled in; a malformed name is a build mistake that
		// the package's tests catch.
		panic(err)
	}
	return ms
}

func load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("migrations: read %s: %w", dir, err)
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
		body, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("migrations: read %s: %w", name, err)
		}
		m := byVersion[version]
		if m == nil {
			m = &Migration{Version: version, Name: label}
			byVersion[version] = m
		}
		if direction == "up" {
			m.Up = string(body)
		} else {
			m.Down = string(body)
		}
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

// Migrator applies and reverts migrations in one schema.
type Migrator struct {
	pool       *pgxpool.Pool
	schema     string
	quoted     string
	migrations []Migration
}

// New returns a Migrator for schema (DefaultSchema when empty) on pool.
func New(pool *pgxpool.Pool, schema string) *Migrator {
	if schema == "" {
		schema = DefaultSchema
	}
	return &Migrator{
		pool:       pool,
		schema:     schema,
		quoted:     pgx.Identifier{schema}.Sanitize(),
		migrations: All(),
	}
}

// Latest is the highest version this build knows.
func (m *Migrator) Latest() int { return m.migrations[len(m.migrations)-1].Version }

// Up applies every migration not yet applied, in order, and returns the versions
// it applied (none when the schema is current). It creates the schema if needed.
// All of it runs in one transaction: either every pending migration is applied
// or none is.
func (m *Migrator) Up(ctx context.Context) ([]int, error) {
	var applied []int
	err := m.locked(ctx, true, func(tx pgx.Tx, done map[int]time.Time) error {
		for _, mig := range m.migrations {
			if _, ok := done[mig.Version]; ok {
				continue
			}
			if _, err := tx.Exec(ctx, m.render(mig.Up)); err != nil {
				return fmt.Errorf("migrations: apply %d_%s: %w", mig.Version, mig.Name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO "+m.quoted+".schema_migrations (version, name) VALUES ($1, $2)", mig.Version, mig.Name); err != nil {
				return fmt.Errorf("migrations: record %d: %w", mig.Version, err)
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
// versions it reverted. Down(ctx, 0) removes every table; the schema itself and
// its schema_migrations table stay. On a schema that does not exist it
// reverts nothing and creates nothing.
func (m *Migrator) Down(ctx context.Context, version int) ([]int, error) {
	if version < 0 || version > m.Latest() {
		return nil, fmt.Errorf("%w: %d (known: 0..%d)", ErrUnknownVersion, version, m.Latest())
	}
	var reverted []int
	err := m.locked(ctx, false, func(tx pgx.Tx, done map[int]time.Time) error {
		for i := len(m.migrations) - 1; i >= 0; i-- {
			mig := m.migrations[i]
			if mig.Version <= version {
				break
			}
			if _, ok := done[mig.Version]; !ok {
				continue
			}
			if _, err := tx.Exec(ctx, m.render(mig.Down)); err != nil {
				return fmt.Errorf("migrations: revert %d_%s: %w", mig.Version, mig.Name, err)
			}
			if _, err := tx.Exec(ctx, "DELETE FROM "+m.quoted+".schema_migrations WHERE version = $1", mig.Version); err != nil {
				return fmt.Errorf("migrations: unrecord %d: %w", mig.Version, err)
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
// reads: a schema that does not exist has nothing applied.
func (m *Migrator) Status(ctx context.Context) ([]Status, error) {
	var out []Status
	err := m.locked(ctx, false, func(_ pgx.Tx, done map[int]time.Time) error {
		for _, mig := range m.migrations {
			at, ok := done[mig.Version]
			out = append(out, Status{Migration: mig, Applied: ok, AppliedAt: at})
		}
		return nil
	})
	return out, err
}

func (m *Migrator) render(sql string) string {
	return strings.ReplaceAll(sql, "{schema}", m.quoted)
}

// locked runs fn in a transaction that holds the schema's migration lock,
// with the versions applied so far. With create, it first makes sure the
// schema and its version table exist; without, a schema that has no version
// table counts as having nothing applied, and nothing is created.
func (m *Migrator) locked(ctx context.Context, create bool, fn func(tx pgx.Tx, done map[int]time.Time) error) error {
	return pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('acidic.migrations:' || $1, 0))", m.schema); err != nil {
			return fmt.Errorf("migrations: take lock: %w", err)
		}
		versions := m.quoted + ".schema_migrations"
		if create {
			if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+m.quoted); err != nil {
				return fmt.Errorf("migrations: create schema: %w", err)
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+versions+` (
			version integer PRIMARY KEY,
			name text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
				return fmt.Errorf("migrations: create version table: %w", err)
			}
		} else {
			var exists bool
			if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", versions).Scan(&exists); err != nil {
				return fmt.Errorf("migrations: find version table: %w", err)
			}
			if !exists {
				return fn(tx, map[int]time.Time{})
			}
		}
		rows, err := tx.Query(ctx, "SELECT version, applied_at FROM "+versions)
		if err != nil {
			return fmt.Errorf("migrations: read versions: %w", err)
		}
		done := map[int]time.Time{}
		var v int
		var at time.Time
		if _, err := pgx.ForEachRow(rows, []any{&v, &at}, func() error { done[v] = at; return nil }); err != nil {
			return fmt.Errorf("migrations: read versions: %w", err)
		}
		return fn(tx, done)
	})
}
