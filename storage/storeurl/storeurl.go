// Package storeurl chooses and opens the store a program runs Acidic on,
// from a URL or from the environment, so that the same program runs on a
// SQLite file on a bare machine and on PostgreSQL in production:
//
//	src, err := storeurl.FromEnv(nil) // DATABASE_URL, else ACIDIC_DB, else ./acidic.db
//	if err != nil { ... }
//	st, err := storeurl.Open(ctx, src, storeurl.Options{Migrate: true})
//	if err != nil { ... }
//	defer st.Close()
//	eng, err := workflow.NewEngine(st.Driver, cfg)
//
// A URL is a PostgreSQL connection string (postgres://user@host/db, or
// libpq's key=value pairs) or sqlite:PATH. The examples and the acidic
// command choose their store here, so `acidic runs list` finds an example's
// runs with the same environment.
//
// On PostgreSQL, Open sets the pool's search_path to the store's schema
// (Options.Schema, else postgres.DefaultSchema), unless the URL sets one
// (search_path=..., or options=-csearch_path=...): a program's own SQL names
// its tables plainly (SELECT ... FROM orders) and finds them next to
// Acidic's, on PostgreSQL as on a SQLite file. Acidic's own SQL always
// qualifies its tables with the schema, so the search_path changes only
// the program's SQL.
package storeurl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/storage/sqlite"
)

// The environment FromEnv reads, and its default.
const (
	// EnvDatabaseURL names the store when set: a PostgreSQL URL, or
	// sqlite:PATH.
	EnvDatabaseURL = "DATABASE_URL"
	// EnvSQLitePath is the SQLite file's path when DATABASE_URL is not set.
	EnvSQLitePath = "ACIDIC_DB"
	// DefaultSQLitePath is the SQLite file used when neither is set, in the
	// working directory.
	DefaultSQLitePath = "acidic.db"
	// SQLitePrefix starts a URL that names a SQLite file: sqlite:PATH.
	SQLitePrefix = "sqlite:"
)

// ErrInvalid is the error of an empty or malformed URL, or of an
// environment variable set to nothing. Its text never quotes the URL, which
// may hold a password.
var ErrInvalid = errors.New("storeurl: invalid store URL")

// Source is a store's URL and where it came from.
type Source struct {
	// URL is a PostgreSQL connection string or sqlite:PATH.
	URL string
	// From says where URL came from, for messages: "DATABASE_URL",
	// "ACIDIC_DB", "default" (./acidic.db), or what the caller sets (the
	// acidic command sets "-database").
	From string
}

// FromEnv returns the store the environment names: DATABASE_URL when it is
// set, else the SQLite file at ACIDIC_DB when that is set, else the SQLite
// file acidic.db in the working directory. A variable set to nothing (or
// to spaces) is an error matching ErrInvalid rather than a silent fall back
// to another store: unset it to use the next one. lookup reads a variable;
// nil means os.LookupEnv.
func FromEnv(lookup func(string) (string, bool)) (Source, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if v, ok := lookup(EnvDatabaseURL); ok {
		if strings.TrimSpace(v) == "" {
			return Source{}, fmt.Errorf("%w: %s is set but empty: unset it to use the SQLite file (%s, else ./%s), or give a PostgreSQL URL",
				ErrInvalid, EnvDatabaseURL, EnvSQLitePath, DefaultSQLitePath)
		}
		return Source{URL: v, From: EnvDatabaseURL}, nil
	}
	if v, ok := lookup(EnvSQLitePath); ok {
		if strings.TrimSpace(v) == "" {
			return Source{}, fmt.Errorf("%w: %s is set but empty: give the SQLite file's path, or unset it to use ./%s",
				ErrInvalid, EnvSQLitePath, DefaultSQLitePath)
		}
		return Source{URL: SQLitePrefix + v, From: EnvSQLitePath}, nil
	}
	return Source{URL: SQLitePrefix + DefaultSQLitePath, From: "default"}, nil
}

// SQLitePath returns the file's path when the URL names a SQLite file.
func (s Source) SQLitePath() (string, bool) {
	return strings.CutPrefix(s.URL, SQLitePrefix)
}

// String describes the store without its URL (which may hold a password):
// "SQLite file acidic.db (default)", "PostgreSQL (DATABASE_URL)".
func (s Source) String() string {
	if p, ok := s.SQLitePath(); ok {
		return fmt.Sprintf("SQLite file %s (%s)", p, s.From)
	}
	return fmt.Sprintf("PostgreSQL (%s)", s.From)
}

// PoolConfig parses a PostgreSQL URL into a pool configuration, with
// application_name "acidic" unless the URL sets one. Its errors match
// ErrInvalid and never quote the URL. A host containing "@" (a password
// with an unescaped "@", split in the wrong place) is refused too:
// connecting would name a host made of part of the password.
func (s Source) PoolConfig() (*pgxpool.Config, error) {
	if _, ok := s.SQLitePath(); ok {
		return nil, fmt.Errorf("%w: %s names a SQLite file, not PostgreSQL", ErrInvalid, s.From)
	}
	if strings.TrimSpace(s.URL) == "" {
		return nil, fmt.Errorf("%w: %s is empty", ErrInvalid, s.From)
	}
	cfg, err := pgxpool.ParseConfig(s.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a valid PostgreSQL connection string: use a URL (postgres://user:password@host:5432/db) or key=value pairs (host=h user=u password=p dbname=db), and percent-encode @ : / ? # in a URL's password (%%40 %%3A %%2F %%3F %%23)",
			ErrInvalid, s.From)
	}
	hosts := []string{cfg.ConnConfig.Host}
	for _, f := range cfg.ConnConfig.Fallbacks {
		hosts = append(hosts, f.Host)
	}
	for _, h := range hosts {
		if strings.Contains(h, "@") {
			return nil, fmt.Errorf("%w: %s: the host part contains \"@\": percent-encode \"@\" in the user name or password as %%40",
				ErrInvalid, s.From)
		}
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "acidic"
	}
	return cfg, nil
}

// Options configure Open. The zero value is usable.
type Options struct {
	// Schema holds Acidic's tables on PostgreSQL (postgres.Options.Schema;
	// default postgres.DefaultSchema). A SQLite file holds one store: Open
	// refuses any other schema for it (ErrInvalid) rather than ignore it.
	Schema string
	// MaxConns caps the PostgreSQL pool; 0 keeps pgxpool's default.
	MaxConns int32
	// Migrate applies the pending migrations of Acidic's tables.
	Migrate bool
	// SQLite configures the SQLite driver (its Migrate field is Migrate's).
	SQLite sqlite.Options
}

// Store is an open store.
type Store struct {
	// Driver runs Acidic on the store.
	Driver storage.Driver
	// Source is what was opened.
	Source Source
	// Pool is the PostgreSQL pool; nil on SQLite.
	Pool  *pgxpool.Pool
	close func()
}

// Close closes the store: the SQLite file, or the PostgreSQL pool.
func (s *Store) Close() { s.close() }

// SQLite reports whether the store is a SQLite file.
func (s *Store) SQLite() bool { return s.Pool == nil }

// Open opens the store src names and checks that it answers: on PostgreSQL,
// a pool (pinged, its search_path the schema unless the URL sets one) and
// postgres.New on it; on SQLite, sqlite.Open, which
// creates a missing file and refuses, before writing anything, a path it
// cannot create or open (sqlite.ErrCannotOpen) and a file that is not a
// database (sqlite.ErrNotADatabase). With Options.Migrate it migrates the
// store. Its errors name src.From, never the URL.
func Open(ctx context.Context, src Source, opts Options) (*Store, error) {
	if path, ok := src.SQLitePath(); ok {
		if strings.TrimSpace(path) == "" {
			return nil, fmt.Errorf("%w: %s: sqlite: needs a file path (sqlite:./%s)", ErrInvalid, src.From, DefaultSQLitePath)
		}
		if opts.Schema != "" && opts.Schema != postgres.DefaultSchema {
			return nil, fmt.Errorf("%w: schema %q: a SQLite file has no schemas (it holds one store; use another file): the schema applies to PostgreSQL only",
				ErrInvalid, opts.Schema)
		}
		so := opts.SQLite
		so.Migrate = so.Migrate || opts.Migrate
		drv, err := sqlite.Open(ctx, path, so)
		if err != nil {
			return nil, fmt.Errorf("database (%s): %w", src.From, err)
		}
		return &Store{Driver: drv, Source: src, close: func() { _ = drv.Close() }}, nil
	}
	cfg, err := src.PoolConfig()
	if err != nil {
		return nil, err
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	setSearchPath(cfg, opts.Schema)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database (%s): %w", src.From, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("cannot reach the database (%s): %w", src.From, err)
	}
	drv := postgres.New(pool, postgres.Options{Schema: opts.Schema})
	if opts.Migrate {
		if _, err := drv.Migrator().Up(ctx); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return &Store{Driver: drv, Source: src, Pool: pool, close: pool.Close}, nil
}

// setSearchPath makes schema (postgres.DefaultSchema when empty) the
// search_path of cfg's connections, unless the URL sets a search_path
// itself, as a parameter or in options.
func setSearchPath(cfg *pgxpool.Config, schema string) {
	params := cfg.ConnConfig.RuntimeParams
	if _, ok := params["search_path"]; ok || strings.Contains(params["options"], "search_path") {
		return
	}
	if schema == "" {
		schema = postgres.DefaultSchema
	}
	params["search_path"] = pgx.Identifier{schema}.Sanitize()
}
