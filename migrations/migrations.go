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
	"unicode"
	"unicode/utf8"

	"github.com/acidic-go/acidic"
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

// ErrInvalidSchema is returned, wrapped with the reason, for a schema name
// PostgreSQL would not keep as given (see CheckSchema). The error also
// matches acidic.ErrInvalid.
var ErrInvalidSchema = errors.New("migrations: invalid schema name")

// MaxSchemaBytes is the longest schema name: PostgreSQL silently cuts
// identifiers to 63 bytes, so two longer names would share one schema (and
// not one migration lock).
const MaxSchemaBytes = 63

// CheckSchema returns nil if name can name Acidic's schema ("" stands for
// DefaultSchema), and otherwise ErrInvalidSchema naming the rule it breaks:
// at most MaxSchemaBytes bytes of UTF-8 without control characters (NUL
// above all), not starting with "pg_" (PostgreSQL reserves those). Any other
// character is fine: the name is always quoted.
func CheckSchema(name string) error {
	if name == "" {
		return nil
	}
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %w: schema %s: %s", ErrInvalidSchema, acidic.ErrInvalid, quoteShort(name), fmt.Sprintf(format, args...))
	}
	if len(name) > MaxSchemaBytes {
		return invalid("%d bytes; PostgreSQL keeps at most %d of a name", len(name), MaxSchemaBytes)
	}
	if !utf8.ValidString(name) {
		return invalid("not valid UTF-8")
	}
	for i, r := range name {
		if unicode.IsControl(r) {
			return invalid("control character %U at byte %d", r, i)
		}
	}
	if strings.HasPrefix(name, "pg_") {
		return invalid(`names starting with "pg_" are reserved for PostgreSQL's own schemas`)
	}
	return nil
}

// quoteShort quotes a schema name for an error message, cut after 80 bytes.
func quoteShort(s string) string {
	if len(s) > 80 {
		return strconv.Quote(s[:80]) + "…"
	}
	return strconv.Quote(s)
}

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
	// err is why the schema name cannot be used (CheckSchema); every method
	// that touches the database returns it.
	err error
}

// New returns a Migrator for schema (DefaultSchema when empty) on pool. A
// schema name CheckSchema refuses makes Up, Down and Status return that
// error without touching the database.
func New(pool *pgxpool.Pool, schema string) *Migrator {
	if schema == "" {
		schema = DefaultSchema
	}
	return &Migrator{
		pool:       pool,
		schema:     schema,
		quoted:     pgx.Identifier{schema}.Sanitize(),
		migrations: All(),
		err:        CheckSchema(schema),
	}
}

// Latest is the highest version this build knows.
func (m *Migrator) Latest() int { return m.migrations[len(m.migrations)-1].Version }

// Up applies every migration not yet applied, in order, and returns the versions
// it applied (none when the schema is current). It creates the schema and its
// schema_migrations table only when they do not exist, so a schema that is
// current needs nothing but USAGE on it and SELECT on schema_migrations: an
// application role may call Up at start-up (see docs/operations.md), and an
// owner may migrate a schema someone else created without CREATE on the
// database. All of it runs in one transaction: either every pending migration
// is applied or none is.
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
	if m.err != nil {
		return m.err
	}
	return pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('acidic.migrations:' || $1, 0))", m.schema); err != nil {
			return fmt.Errorf("migrations: take lock: %w", err)
		}
		// The catalogs say what exists without any privilege on the schema.
		// CREATE ... IF NOT EXISTS would not do: PostgreSQL checks the
		// privilege to create before it looks whether the object exists.
		var schemaExists, tableExists bool
		if err := tx.QueryRow(ctx, `SELECT
			EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1),
			EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			        WHERE n.nspname = $1 AND c.relname = 'schema_migrations')`, m.schema).Scan(&schemaExists, &tableExists); err != nil {
			return fmt.Errorf("migrations: find schema: %w", err)
		}
		versions := m.quoted + ".schema_migrations"
		switch {
		case !tableExists && !create:
			return fn(tx, map[int]time.Time{})
		case !tableExists:
			if !schemaExists {
				if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+m.quoted); err != nil {
					return fmt.Errorf("migrations: create schema: %w", err)
				}
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+versions+` (
			version integer PRIMARY KEY,
			name text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
				return fmt.Errorf("migrations: create version table: %w", err)
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
