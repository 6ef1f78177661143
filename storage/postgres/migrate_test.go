package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/migrations"
	"github.com/acidic-go/acidic/storage/postgres"
)

// The driver's migrations, run by package migrations: what they make in the
// schema, the advisory lock, the privileges they need, schema names.

// migrator returns a migrator for schema on pool.
func migrator(pool *pgxpool.Pool, schema string) *migrations.Migrator {
	return postgres.New(pool, postgres.Options{Schema: schema}).Migrator()
}

// allVersions is [1..latest].
func allVersions(latest int) []int {
	out := make([]int, latest)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

// tableExists reports whether schema.name is a relation.
func tableExists(ctx context.Context, t *testing.T, pool *pgxpool.Pool, schema, name string) bool {
	t.Helper()
	var exists bool
	qualified := pgx.Identifier{schema, name}.Sanitize()
	if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", qualified).Scan(&exists); err != nil {
		t.Fatalf("to_regclass(%s): %v", qualified, err)
	}
	return exists
}

// appliedRows reads the version table directly.
func appliedRows(ctx context.Context, t *testing.T, pool *pgxpool.Pool, schema string) []int {
	t.Helper()
	rows, err := pool.Query(ctx, "SELECT version FROM "+pgx.Identifier{schema, "schema_migrations"}.Sanitize()+" ORDER BY version")
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return vs
}

func checkStatus(ctx context.Context, t *testing.T, m *migrations.Migrator, wantApplied bool) {
	t.Helper()
	st, err := m.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if len(st) != m.Latest() {
		t.Fatalf("Status returned %d entries, want %d", len(st), m.Latest())
	}
	for i, s := range st {
		if s.Version != i+1 {
			t.Errorf("Status[%d].Version = %d, want %d", i, s.Version, i+1)
		}
		if s.Applied != wantApplied {
			t.Errorf("Status[%d] (version %d).Applied = %v, want %v", i, s.Version, s.Applied, wantApplied)
		}
		if wantApplied {
			if s.AppliedAt.IsZero() {
				t.Errorf("Status[%d] (version %d).AppliedAt is zero for an applied migration", i, s.Version)
			} else if d := time.Since(s.AppliedAt); d < -time.Minute || d > time.Minute {
				t.Errorf("Status[%d].AppliedAt = %v, not within a minute of now", i, s.AppliedAt)
			}
		} else if !s.AppliedAt.IsZero() {
			t.Errorf("Status[%d] (version %d).AppliedAt = %v, want zero for a migration not applied", i, s.Version, s.AppliedAt)
		}
		if s.Up == "" || s.Down == "" || s.Name == "" {
			t.Errorf("Status[%d] lacks its migration: name %q, up %d bytes, down %d bytes", i, s.Name, len(s.Up), len(s.Down))
		}
	}
}

// TestMigrationFiles: the driver's files load, and every one names the
// schema {schema}: none may create anything outside it.
func TestMigrationFiles(t *testing.T) {
	t.Parallel()
	all, err := migrations.Load(postgres.New(nil, postgres.Options{}).MigrationFiles())
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range all {
		if m.Version != i+1 {
			t.Errorf("migration %d has version %d, want %d", i, m.Version, i+1)
		}
		if m.Name == "" {
			t.Errorf("migration %d has an empty name", m.Version)
		}
		for dir, body := range map[string]string{"up": m.Up, "down": m.Down} {
			if strings.TrimSpace(body) == "" {
				t.Errorf("migration %d: %s is empty", m.Version, dir)
			}
			if !strings.Contains(body, "{schema}") {
				t.Errorf("migration %d: %s does not contain the {schema} placeholder", m.Version, dir)
			}
		}
	}
	if got := migrator(nil, "").Latest(); got != len(all) {
		t.Errorf("Latest() = %d, want %d", got, len(all))
	}
}

func TestMigrateUpStatusDown(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{Unmigrated: true})
	pool, schema := drv.Pool(), drv.Schema()
	m := migrator(pool, schema)
	latest := m.Latest()

	if tableExists(ctx, t, pool, schema, "jobs") {
		t.Fatal("jobs exists before Up on an unmigrated schema")
	}

	got, err := m.Up(ctx)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	if want := allVersions(latest); !slices.Equal(got, want) {
		t.Fatalf("Up applied %v, want %v", got, want)
	}
	for _, table := range []string{"jobs", "runs", "run_steps", "schema_migrations"} {
		if !tableExists(ctx, t, pool, schema, table) {
			t.Errorf("after Up, table %s.%s does not exist", schema, table)
		}
	}
	if rows := appliedRows(ctx, t, pool, schema); !slices.Equal(rows, allVersions(latest)) {
		t.Errorf("schema_migrations holds %v, want %v", rows, allVersions(latest))
	}
	checkStatus(ctx, t, m, true)

	// Up again is a no-op.
	got, err = m.Up(ctx)
	if err != nil {
		t.Fatalf("second Up: %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("second Up applied %v, want none", got)
	}
	checkStatus(ctx, t, m, true)

	// Down to the latest version reverts nothing.
	got, err = m.Down(ctx, latest)
	if err != nil {
		t.Fatalf("Down(%d): %v", latest, err)
	}
	if len(got) != 0 {
		t.Fatalf("Down(latest) reverted %v, want none", got)
	}

	// Down to 0 reverts everything, newest first.
	got, err = m.Down(ctx, 0)
	if err != nil {
		t.Fatalf("Down(0): %v", err)
	}
	want := allVersions(latest)
	slices.Reverse(want)
	if !slices.Equal(got, want) {
		t.Fatalf("Down(0) reverted %v, want %v", got, want)
	}
	for _, table := range []string{"jobs", "runs", "run_steps"} {
		if tableExists(ctx, t, pool, schema, table) {
			t.Errorf("after Down(0), table %s.%s still exists", schema, table)
		}
	}
	if !tableExists(ctx, t, pool, schema, "schema_migrations") {
		t.Error("Down(0) removed schema_migrations; it is documented to stay")
	}
	var fn bool
	if err := pool.QueryRow(ctx, "SELECT to_regprocedure($1) IS NOT NULL", pgx.Identifier{schema}.Sanitize()+".job_state_bit(text)").Scan(&fn); err != nil {
		t.Fatalf("to_regprocedure: %v", err)
	}
	if fn {
		t.Error("after Down(0), function job_state_bit still exists")
	}
	if rows := appliedRows(ctx, t, pool, schema); len(rows) != 0 {
		t.Errorf("after Down(0), schema_migrations holds %v, want nothing", rows)
	}
	checkStatus(ctx, t, m, false)

	// Down again has nothing to revert.
	got, err = m.Down(ctx, 0)
	if err != nil {
		t.Fatalf("second Down(0): %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("second Down(0) reverted %v, want none", got)
	}

	// And Up works again.
	got, err = m.Up(ctx)
	if err != nil {
		t.Fatalf("Up after Down: %v", err)
	}
	if !slices.Equal(got, allVersions(latest)) {
		t.Fatalf("Up after Down applied %v, want %v", got, allVersions(latest))
	}
	if !tableExists(ctx, t, pool, schema, "jobs") {
		t.Error("after Up following Down, jobs does not exist")
	}
	checkStatus(ctx, t, m, true)
}

func TestMigrateDownUnknownVersion(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	pool, schema := drv.Pool(), drv.Schema()
	m := migrator(pool, schema)

	for _, v := range []int{-1, m.Latest() + 1, 1 << 20} {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			t.Parallel()
			got, err := m.Down(ctx, v)
			if !errors.Is(err, migrations.ErrUnknownVersion) {
				t.Fatalf("Down(%d) error = %v, want ErrUnknownVersion", v, err)
			}
			if got != nil {
				t.Errorf("Down(%d) reverted %v alongside an error", v, got)
			}
			if !tableExists(ctx, t, pool, schema, "jobs") {
				t.Errorf("Down(%d) dropped jobs despite failing", v)
			}
			if rows := appliedRows(ctx, t, pool, schema); !slices.Equal(rows, allVersions(m.Latest())) {
				t.Errorf("after Down(%d), schema_migrations holds %v, want %v", v, rows, allVersions(m.Latest()))
			}
		})
	}
}

// TestMigrateUpConcurrent runs Up from 8 migrators at once, on two pools: the
// advisory lock makes exactly one of them do the work.
func TestMigrateUpConcurrent(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{Unmigrated: true})
	pools := []*pgxpool.Pool{drv.Pool(), testdb.Pool(t, testdb.Options{})}
	schema := drv.Schema()

	const n = 8
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		results = make([][]int, n)
		errs    = make([]error, n)
	)
	for i := range n {
		m := migrator(pools[i%len(pools)], schema)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = m.Up(ctx)
		}()
	}
	close(start)
	wg.Wait()

	want := allVersions(migrator(nil, schema).Latest())
	winners := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Up #%d: %v", i, errs[i])
			continue
		}
		switch {
		case len(results[i]) == 0:
		case slices.Equal(results[i], want):
			winners++
		default:
			t.Errorf("Up #%d applied %v, want %v or nothing", i, results[i], want)
		}
	}
	if winners != 1 {
		t.Errorf("%d migrators reported applying %v, want exactly 1", winners, want)
	}
	if rows := appliedRows(ctx, t, drv.Pool(), schema); !slices.Equal(rows, want) {
		t.Errorf("schema_migrations holds %v, want %v", rows, want)
	}
}

// TestMigrateSchemaNeedsQuoting migrates a schema whose name is not a plain
// identifier, to check that every statement quotes it, including those that
// define functions (the name contains a dollar quote), and that the trigger
// that deletes the step log of deleted runs works there.
func TestMigrateSchemaNeedsQuoting(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	pool := testdb.Pool(t, testdb.Options{})
	schema := testdb.SchemaName(t) + `-Odd "Name" $$`
	t.Cleanup(func() { testdb.DropSchema(t, schema) })
	m := migrator(pool, schema)

	got, err := m.Up(ctx)
	if err != nil {
		t.Fatalf("Up on schema %q: %v", schema, err)
	}
	if !slices.Equal(got, allVersions(m.Latest())) {
		t.Fatalf("Up applied %v, want %v", got, allVersions(m.Latest()))
	}
	if !tableExists(ctx, t, pool, schema, "jobs") {
		t.Fatalf("jobs does not exist in schema %q", schema)
	}
	q := pgx.Identifier{schema}.Sanitize()
	var left int
	_, err = pool.Exec(ctx, `WITH r AS (
		INSERT INTO `+q+`.runs (id, idempotency_key, workflow, args, queue, recovery_point, definition_hash)
		VALUES (gen_random_uuid(), 'k', 'w', '{}', 'q', 's', 'h') RETURNING id)
		INSERT INTO `+q+`.run_steps (run_id, position, name, state, attempt, started_at, finished_at)
		SELECT id, 0, 's', 'succeeded', 1, now(), now() FROM r`)
	if err != nil {
		t.Fatalf("insert a run and its step: %v", err)
	}
	if _, err := pool.Exec(ctx, "DELETE FROM "+q+".runs"); err != nil {
		t.Fatalf("delete runs: %v", err)
	}
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+q+".run_steps").Scan(&left); err != nil || left != 0 {
		t.Fatalf("after deleting the runs, %d step rows are left (%v)", left, err)
	}
	if _, err := m.Down(ctx, 0); err != nil {
		t.Fatalf("Down(0) on schema %q: %v", schema, err)
	}
	if tableExists(ctx, t, pool, schema, "jobs") {
		t.Fatalf("jobs still exists in schema %q after Down(0)", schema)
	}
}

// Status and Down only read a schema that was never migrated: they report
// nothing applied and create neither the schema nor its version table (an
// operator's typo in -schema must leave no trace).
func TestMigrateStatusAndDownCreateNothing(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	pool := testdb.Pool(t, testdb.Options{})
	schema := testdb.SchemaName(t)
	t.Cleanup(func() { testdb.DropSchema(t, schema) })
	m := migrator(pool, schema)
	status, err := m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(status) != m.Latest() {
		t.Fatalf("Status listed %d migrations, want %d", len(status), m.Latest())
	}
	for _, s := range status {
		if s.Applied {
			t.Errorf("migration %d applied on a schema that does not exist", s.Version)
		}
	}
	if reverted, err := m.Down(ctx, 0); err != nil || len(reverted) != 0 {
		t.Fatalf("Down(0) = %v, %v; want nothing reverted", reverted, err)
	}
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil || exists {
		t.Fatalf("schema %s exists after Status and Down (%v)", schema, err)
	}
}

// TestMigrateUpWithNothingPendingOnlyReads: an application role that may only use
// the schema and read schema_migrations calls Up at start-up; with nothing
// pending it must succeed, creating nothing (it could not: the role may not
// create schemas or tables).
func TestMigrateUpWithNothingPendingOnlyReads(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	reader := testdb.Role(t, "")
	drv := testdb.New(t, testdb.Options{})
	admin, schema := drv.Pool(), drv.Schema()
	q := pgx.Identifier{schema}.Sanitize()
	if _, err := admin.Exec(ctx, "GRANT USAGE ON SCHEMA "+q+" TO "+reader+"; GRANT SELECT ON "+q+".schema_migrations TO "+reader); err != nil {
		t.Fatal(err)
	}
	m := migrator(testdb.Pool(t, testdb.Options{User: reader, MaxConns: 2}), schema)
	applied, err := m.Up(ctx)
	if err != nil || len(applied) != 0 {
		t.Fatalf("Up with nothing pending, as a role that can only read the version table: applied %v, err %v", applied, err)
	}
	checkStatus(ctx, t, m, true)
}

// TestMigrateUpInSchemaCreatedByAnotherRole: a DBA creates the schema for its owner,
// a role without CREATE on the database; the owner migrates it.
func TestMigrateUpInSchemaCreatedByAnotherRole(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	owner := testdb.Role(t, "NOCREATEDB")
	admin := testdb.Pool(t, testdb.Options{MaxConns: 2})
	schema := testdb.SchemaName(t)
	t.Cleanup(func() { testdb.DropSchema(t, schema) })
	var canCreate bool
	if err := admin.QueryRow(ctx, "SELECT has_database_privilege($1, current_database(), 'CREATE')", owner).Scan(&canCreate); err != nil || canCreate {
		t.Fatalf("the owner role may create schemas (%v); the test needs one that may not", err)
	}
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()+" AUTHORIZATION "+owner); err != nil {
		t.Fatal(err)
	}
	m := migrator(testdb.Pool(t, testdb.Options{User: owner, MaxConns: 2}), schema)
	applied, err := m.Up(ctx)
	if err != nil || !slices.Equal(applied, allVersions(m.Latest())) {
		t.Fatalf("Up by the schema's owner: applied %v, err %v", applied, err)
	}
	if applied, err := m.Up(ctx); err != nil || len(applied) != 0 {
		t.Fatalf("second Up: applied %v, err %v", applied, err)
	}
	if !tableExists(ctx, t, admin, schema, "jobs") {
		t.Fatal("jobs does not exist after the owner's Up")
	}
	// Without the schema, the owner may not create it: Up says so.
	other := migrator(testdb.Pool(t, testdb.Options{User: owner, MaxConns: 1}), schema+"_none")
	if _, err := other.Up(ctx); err == nil || !strings.Contains(err.Error(), "create schema") {
		t.Fatalf("Up of a missing schema by a role that may not create one: %v, want a create schema error", err)
	}
}

// TestSchemaNameLimits: CheckSchema and the Migrator refuse names PostgreSQL
// would not keep as given, before touching the database.
func TestSchemaNameLimits(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	pool := testdb.Pool(t, testdb.Options{MaxConns: 1})
	for _, bad := range []string{strings.Repeat("s", postgres.MaxSchemaBytes+1), "a\x00b", "a\nb", "\xff", "pg_acidic"} {
		m := migrator(pool, bad)
		_, upErr := m.Up(ctx)
		_, downErr := m.Down(ctx, 0)
		_, statusErr := m.Status(ctx)
		for _, err := range []error{upErr, downErr, statusErr, postgres.CheckSchema(bad)} {
			if !errors.Is(err, postgres.ErrInvalidSchema) || !errors.Is(err, acidic.ErrInvalid) {
				t.Errorf("schema %q: err = %v, want ErrInvalidSchema", bad, err)
			}
		}
	}
	if err := postgres.CheckSchema(strings.Repeat("s", postgres.MaxSchemaBytes)); err != nil {
		t.Errorf("a %d-byte name: %v", postgres.MaxSchemaBytes, err)
	}
}
