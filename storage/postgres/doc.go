// Package postgres is Acidic's PostgreSQL driver, built on pgx/v5 and pgxpool.
//
// It is the only package that holds SQL: the queries live in the sql/ folder,
// embedded in the binary, one named query per block, and the migrations that
// make the tables in the migrations/ folder (NNNN_name.up.sql and
// .down.sql, run by package migrations: drv.Migrator().Up(ctx)). Every table is qualified
// with the driver's schema, so the driver works on any pool whatever its
// search_path, and inside a caller's own transaction (WrapTx).
//
//	pool, _ := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
//	drv := postgres.New(pool, postgres.Options{Schema: "acidic"})
//
// Steps that need the pgx transaction they run in get it with PgxTx.
//
// Every write is checked with package storage's rules (the row type's Validate)
// before its statement is sent, so a value the tables cannot hold is
// acidic.ErrInvalid, never a database error; error texts are bound as
// storage.Text leaves them.
package postgres
