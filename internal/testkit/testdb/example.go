package testdb

import (
	"context"
	"crypto/rand"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic/storage/postgres"
)

// ExampleDriver returns a driver on a new, migrated schema of the test
// database, for Example functions (which have no *testing.T), and a
// function that drops the schema and closes the pool. Unqualified table
// names in the example's own SQL name tables of that schema (it is the
// pool's search path). It panics when the database cannot be reached.
func ExampleDriver() (*postgres.Driver, func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	schema := "example_" + strings.ToLower(rand.Text())
	cfg, err := pgxpool.ParseConfig(URL())
	if err != nil {
		panic(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		panic(err)
	}
	drv := postgres.New(pool, postgres.Options{Schema: schema})
	if _, err := drv.Migrator().Up(ctx); err != nil {
		pool.Close()
		panic(err)
	}
	return drv, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := pool.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		pool.Close()
		if err != nil {
			panic(err)
		}
	}
}
