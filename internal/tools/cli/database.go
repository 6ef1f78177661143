package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/storage/storeurl"
)

// connectTimeout bounds connecting to the database and checking its schema.
const connectTimeout = 10 * time.Second

// database is the connection string the command was given and where it
// came from ("-database", "DATABASE_URL", "ACIDIC_DB" or "default"). The
// string itself is never printed: it may hold a password.
type database struct {
	conn   string
	source string
}

func (d database) src() storeurl.Source { return storeurl.Source{URL: d.conn, From: d.source} }

// resolveDatabase finds the connection string: -database when given (it
// must not be empty), else the store the environment names
// (storeurl.FromEnv: DATABASE_URL, else the SQLite file at ACIDIC_DB, else
// ./acidic.db), the same choice the examples make. A variable set to
// nothing is a usage error rather than a silent fall back to another store;
// an empty string would also make the PostgreSQL driver fill it from
// libpq's PG* variables.
func (e *env) resolveDatabase() (database, error) {
	if e.database.set {
		if strings.TrimSpace(e.database.value) == "" {
			return database{}, fmt.Errorf("%w: -database is empty: give a PostgreSQL URL (postgres://user@host/db) or key=value connection string, or sqlite:PATH", errUsage)
		}
		return database{conn: e.database.value, source: "-database"}, nil
	}
	src, err := storeurl.FromEnv(e.lookupEnv)
	if err != nil {
		return database{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	return database{conn: src.URL, source: src.From}, nil
}

// explicitDatabase is resolveDatabase without the SQLite default: -database
// or DATABASE_URL (acidic bench measures the database it is pointed at, not
// a file it would create).
func (e *env) explicitDatabase() (database, error) {
	if !e.database.set {
		if v, ok := e.lookupEnv(storeurl.EnvDatabaseURL); !ok || strings.TrimSpace(v) == "" {
			return database{}, fmt.Errorf("%w: no database: set DATABASE_URL or pass -database", errUsage)
		}
	}
	return e.resolveDatabase()
}

// config parses a PostgreSQL connection string (storeurl.Source.PoolConfig):
// its errors never quote the string.
func (d database) config() (*pgxpool.Config, error) {
	cfg, err := d.src().PoolConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	return cfg, nil
}

// connect opens the database (a pool on PostgreSQL, or a SQLite file,
// created when missing: commands other than "migrate" then find it not
// migrated) and checks that it answers. The -schema flag does not apply to
// a SQLite file: it holds one instance.
func (e *env) connect() error {
	db, err := e.resolveDatabase()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(e.ctx, connectTimeout)
	defer cancel()
	st, err := storeurl.Open(ctx, db.src(), storeurl.Options{Schema: e.schemaName(), MaxConns: 4})
	if errors.Is(err, storeurl.ErrInvalid) {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if err != nil {
		return err
	}
	drv, ok := st.Driver.(driver)
	if !ok {
		st.Close()
		return fmt.Errorf("database (%s): the driver %T has no Migrator", db.source, st.Driver)
	}
	e.drv, e.close, e.store = drv, st.Close, st
	return nil
}

// errNotMigrated marks a schema that lacks some of Acidic's migrations.
var errNotMigrated = errors.New("schema not migrated")

// notMigrated is the error for a schema that misses migrations: it says
// which command fixes it.
func (e *env) notMigrated(detail string) error {
	hint := "acidic migrate up"
	if e.store != nil && e.store.SQLite() {
		return fmt.Errorf("%w: the %s %s (run: %s)", errNotMigrated, e.store.Source, detail, hint)
	}
	if s := e.schemaName(); s != postgres.DefaultSchema {
		hint = "acidic -schema " + s + " migrate up"
	}
	return fmt.Errorf("%w: schema %q %s (run: %s)", errNotMigrated, e.schemaName(), detail, hint)
}

// requireMigrated returns errNotMigrated unless every migration this build
// knows is applied to the schema. It only reads.
func (e *env) requireMigrated() error {
	ctx, cancel := context.WithTimeout(e.ctx, connectTimeout)
	defer cancel()
	st, err := e.drv.Migrator().Status(ctx)
	if err != nil {
		return err
	}
	applied := 0
	for _, s := range st {
		if s.Applied {
			applied++
		}
	}
	switch {
	case applied == 0:
		return e.notMigrated("is not migrated")
	case applied < len(st):
		return e.notMigrated(fmt.Sprintf("has %d of %d migrations applied", applied, len(st)))
	}
	return nil
}

// missingTable reports whether err is PostgreSQL's "relation does not
// exist" (SQLSTATE 42P01): the schema was migrated down meanwhile.
func missingTable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01"
}
