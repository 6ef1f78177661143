// Package testdb gives each test its own migrated schema in the test database,
// so tests run in parallel without seeing each other's rows.
//
// The database comes from DATABASE_URL (scripts/test.sh sets it up); without
// it, the local default postgres://postgres@127.0.0.1:5432/acidic_test is used.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic/storage/postgres"
)

// DefaultURL is used when DATABASE_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/acidic_test?sslmode=disable"

// URL returns the test database's connection string.
func URL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// SchemaName returns a fresh schema name derived from the test's name.
func SchemaName(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	base := unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(base) > 40 {
		base = base[len(base)-40:]
	}
	return "t_" + base + "_" + hex.EncodeToString(b[:])
}

// Options tune a test database.
type Options struct {
	// MaxConns caps the pool. Default 10.
	MaxConns int32
	// Unmigrated leaves the schema empty (the migrations tests want that).
	Unmigrated bool
	// User connects as this role (see Role) instead of DATABASE_URL's.
	User string
}

// Pool opens a pool on the test database that is closed when the test ends.
func Pool(t testing.TB, opts Options) *pgxpool.Pool {
	t.Helper()
	return schemaPool(t, opts, "")
}

// schemaPool is Pool, with schema as its search_path when not empty (as
// storeurl.Open sets it): unqualified names in a test's SQL name tables of
// the test's schema.
func schemaPool(t testing.TB, opts Options, schema string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(URL())
	if err != nil {
		t.Fatalf("testdb: parse DATABASE_URL: %v", err)
	}
	if schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	}
	cfg.MaxConns = opts.MaxConns
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 10
	}
	if opts.User != "" {
		cfg.ConnConfig.User = opts.User
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("testdb: connect: %v", err)
	}
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("testdb: cannot reach the test database at %s (run the README's test command, or set DATABASE_URL): %v", URL(), err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// New returns a driver on a fresh, migrated schema that is dropped when the
// test ends (kept when it failed and ACIDIC_KEEP_SCHEMA is set, to inspect).
// The schema is its pool's search_path, as storeurl.Open sets it: the
// test's own SQL may name its tables unqualified.
func New(t testing.TB, opts Options) *postgres.Driver {
	t.Helper()
	schema := SchemaName(t)
	pool := schemaPool(t, opts, schema)
	drv := postgres.New(pool, postgres.Options{Schema: schema})
	t.Cleanup(func() { DropSchema(t, schema) })
	if !opts.Unmigrated {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := drv.Migrator().Up(ctx); err != nil {
			t.Fatalf("testdb: migrate %s: %v", schema, err)
		}
	}
	return drv
}

// DropSchema removes a test schema and everything in it.
func DropSchema(t testing.TB, schema string) {
	if t.Failed() && os.Getenv("ACIDIC_KEEP_SCHEMA") != "" {
		t.Logf("testdb: kept schema %s", schema)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A connection of its own: the test may have closed its pool on purpose.
	conn, err := pgx.Connect(ctx, URL())
	if err != nil {
		t.Logf("testdb: drop schema %s: %v", schema, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		t.Logf("testdb: drop schema %s: %v", schema, err)
	}
}

// Role creates a role that may log in, with no other privilege, under a
// fresh name (roles belong to the whole cluster, not to one database), and
// drops it with everything it owns and was granted when the test ends. attrs
// are added to CREATE ROLE as they are (NOCREATEDB, say). Connect as it with
// Options.User.
func Role(t testing.TB, attrs string) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	role := "acidic_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, URL())
	if err != nil {
		t.Fatalf("testdb: create role: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE ROLE "+role+" LOGIN "+attrs); err != nil {
		t.Fatalf("testdb: create role: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, URL())
		if err != nil {
			t.Logf("testdb: drop role %s: %v", role, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP OWNED BY "+role+" CASCADE"); err != nil {
			t.Logf("testdb: drop objects of role %s: %v", role, err)
		}
		if _, err := conn.Exec(ctx, "DROP ROLE "+role); err != nil {
			t.Logf("testdb: drop role %s: %v", role, err)
		}
	})
	return role
}

// NewSchemas returns a pool of migrated schemas on one connection pool of
// at most maxConns connections to base's database (nil: the test
// database), each made ready by setup (when set), handed out empty and
// dropped when the test ends. The pool's commits do not wait for the WAL
// flush: it serves tests that inject faults in the process, where the
// database does not crash, and run several times faster so.
func NewSchemas(t *testing.T, base *postgres.Driver, maxConns int32, setup func(ctx context.Context, drv *postgres.Driver) error) *Schemas {
	t.Helper()
	var cfg *pgxpool.Config
	if base != nil {
		cfg = base.Pool().Config()
	} else {
		var err error
		if cfg, err = pgxpool.ParseConfig(URL()); err != nil {
			t.Fatalf("testdb: parse DATABASE_URL: %v", err)
		}
	}
	cfg.MaxConns = maxConns
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	// The pool serves many schemas: none is its search_path (not base's,
	// which New sets), so SQL run on one must qualify its tables.
	delete(cfg.ConnConfig.RuntimeParams, "search_path")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		t.Fatalf("testdb: cannot reach the test database at %s: %v", URL(), err)
	}
	t.Cleanup(pool.Close)
	s := &Schemas{pool: pool, setup: setup, free: make(chan *postgres.Driver, 8)}
	t.Cleanup(s.drop)
	return s
}

// Schemas hands out migrated schemas, emptied between uses.
type Schemas struct {
	pool  *pgxpool.Pool
	setup func(ctx context.Context, drv *postgres.Driver) error
	free  chan *postgres.Driver
	mu    sync.Mutex
	all   []string
}

// Get returns an empty schema: a free one, emptied, or a new one.
func (p *Schemas) Get(ctx context.Context, t *testing.T) *postgres.Driver {
	t.Helper()
	select {
	case drv := <-p.free:
		_, err := p.pool.Exec(ctx, `DO $$
DECLARE tables text;
BEGIN
  SELECT string_agg(format('%I.%I', schemaname, tablename), ', ') INTO tables
  FROM pg_tables WHERE schemaname = `+quoteLiteral(drv.Schema())+` AND tablename <> 'schema_migrations';
  IF tables IS NOT NULL THEN EXECUTE 'TRUNCATE ' || tables || ' RESTART IDENTITY CASCADE'; END IF;
END $$`)
		if err != nil {
			t.Fatalf("empty schema %s: %v", drv.Schema(), err)
		}
		return drv
	default:
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "acidic_faults_" + hex.EncodeToString(b[:])
	p.mu.Lock()
	p.all = append(p.all, schema)
	p.mu.Unlock()
	drv := postgres.New(p.pool, postgres.Options{Schema: schema})
	if _, err := drv.Migrator().Up(ctx); err != nil {
		t.Fatalf("migrate %s: %v", schema, err)
	}
	if p.setup != nil {
		if err := p.setup(ctx, drv); err != nil {
			t.Fatalf("Setup: %v", err)
		}
	}
	return drv
}

// Put gives a schema back for another use.
func (p *Schemas) Put(drv *postgres.Driver) {
	select {
	case p.free <- drv:
	default:
	}
}

// drop removes every schema the pool made.
func (p *Schemas) drop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.all {
		_, _ = p.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE")
	}
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
