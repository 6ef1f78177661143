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
	"github.com/acidic-go/acidic/storage/sqlite"
)

// connectTimeout bounds connecting to the database and checking its schema.
const connectTimeout = 10 * time.Second

// database is the connection string the command was given and where it
// came from ("-database" or "DATABASE_URL"). The string itself is never
// printed: it may hold a password.
type database struct {
	conn   string
	source string
}

// resolveDatabase finds the connection string: -database when given (it
// must not be empty), else DATABASE_URL. There is no default: without
// either, it is a usage error rather than a silent connection to some
// database, and an empty string is refused too, since the driver would fill
// it from libpq's PG* variables.
func (e *env) resolveDatabase() (database, error) {
	if e.database.set {
		if strings.TrimSpace(e.database.value) == "" {
			return database{}, fmt.Errorf("%w: -database is empty: give a PostgreSQL URL (postgres://user@host/db) or key=value connection string, or sqlite:PATH", errUsage)
		}
		return database{conn: e.database.value, source: "-database"}, nil
	}
	v, ok := e.lookupEnv("DATABASE_URL")
	if strings.TrimSpace(v) == "" {
		why := ""
		if ok {
			why = " (DATABASE_URL is empty)"
		}
		return database{}, fmt.Errorf("%w: no database: set DATABASE_URL or pass -database%s", errUsage, why)
	}
	return database{conn: v, source: "DATABASE_URL"}, nil
}

// config parses the connection string. Its errors never quote the string
// (the driver's own parse errors do, with best-effort redaction). A host
// containing "@" means a password with an unescaped "@" that the parser
// split in the wrong place: connecting would name a host made of part of
// the password, so it is refused too.
func (d database) config() (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(d.conn)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a valid PostgreSQL connection string: use a URL (postgres://user:password@host:5432/db) or key=value pairs (host=h user=u password=p dbname=db), and percent-encode @ : / ? # in a URL's password (%%40 %%3A %%2F %%3F %%23)",
			errUsage, d.source)
	}
	hosts := []string{cfg.ConnConfig.Host}
	for _, f := range cfg.ConnConfig.Fallbacks {
		hosts = append(hosts, f.Host)
	}
	for _, h := range hosts {
		if strings.Contains(h, "@") {
			return nil, fmt.Errorf("%w: %s: the host part contains \"@\": percent-encode \"@\" in the user name or password as %%40",
				errUsage, d.source)
		}
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "acidic"
	}
	return cfg, nil
}

// sqlitePrefix marks a connection string that names a SQLite file:
// sqlite:PATH.
const sqlitePrefix = "sqlite:"

// connect opens the database (a pool on PostgreSQL, or a SQLite file) and
// checks that it answers.
func (e *env) connect() error {
	db, err := e.resolveDatabase()
	if err != nil {
		return err
	}
	if path, ok := strings.CutPrefix(db.conn, sqlitePrefix); ok {
		return e.connectSQLite(db, path)
	}
	cfg, err := db.config()
	if err != nil {
		return err
	}
	cfg.MaxConns = 4
	ctx, cancel := context.WithTimeout(e.ctx, connectTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("database (%s): %w", db.source, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return fmt.Errorf("cannot reach the database (%s): %w", db.source, err)
	}
	e.drv, e.close = postgres.New(pool, postgres.Options{Schema: e.schemaName()}), pool.Close
	return nil
}

// connectSQLite opens the SQLite file at path, creating it when missing
// (commands other than "migrate" then find it not migrated). The -schema
// flag does not apply: a file holds one instance.
func (e *env) connectSQLite(db database, path string) error {
	if strings.TrimSpace(path) == "" {
		return fmt.Errorf("%w: %s: sqlite: needs a file path (sqlite:./acidic.db)", errUsage, db.source)
	}
	ctx, cancel := context.WithTimeout(e.ctx, connectTimeout)
	defer cancel()
	drv, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		return fmt.Errorf("database (%s): %w", db.source, err)
	}
	e.drv, e.close = drv, func() { _ = drv.Close() }
	return nil
}

// errNotMigrated marks a schema that lacks some of Acidic's migrations.
var errNotMigrated = errors.New("schema not migrated")

// notMigrated is the error for a schema that misses migrations: it says
// which command fixes it.
func (e *env) notMigrated(detail string) error {
	hint := "acidic migrate up"
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
