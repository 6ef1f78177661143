package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/run"
	"github.com/acidic-go/acidic/storage"
)

// FuzzStoredRowDecoding pushes arbitrary bytes through the real storage
// round trips and the decoding of the rows that come back:
//
//   - a job's args and meta (JobInsertMany, then JobGet and JobList): either
//     the storage refuses them with ErrInvalid before the database sees
//     them (never a database error: storage.CheckJSON must refuse exactly
//     what jsonb cannot store) and no row is written, or they come back
//     equal as JSON values;
//   - a job's errors column overwritten with arbitrary JSON (as an older
//     version, another tool or a hand-written UPDATE could leave it): JobGet
//     and JobList either decode it or fail with a clear error naming the
//     job, and never panic;
//   - a run's args through run.Create twice: the database stores jsonb,
//     which rewrites documents (key order, numbers, escapes); enqueueing the
//     same arguments again must find the run, not report mismatched
//     arguments.
//
// It needs the test database (DATABASE_URL). Run it with
//
//	go test ./storage/postgres -run '^$' -fuzz FuzzStoredRowDecoding
func FuzzStoredRowDecoding(f *testing.F) {
	for _, s := range []struct{ doc, errs string }{
		{`{"order":42,"note":"<&>\u2028"}`, `[{"attempt":1,"at":"2030-01-01T00:00:00Z","error":"boom"}]`},
		{`{"n":1e2,"m":100.0,"z":-0,"big":12345678901234567890123,"tiny":1e-7}`, `[{"attempt":1,"at":"2030-01-01T00:00:00.123456+05:30","error":"x"}]`},
		{`{"b":1,"a":2,"a":3}`, `[]`},
		{`[1,"two",null,true,{"x":[]}]`, `{}`},
		{`"\u00e9\ud83d\ude00"`, `null`},
		{`{"nul":"\u0000"}`, `{"not":"an array"}`},
		{`{"lone":"\ud800"}`, `[1,2,3]`},
		{`{"n":1e400,"m":1e-400}`, `[{"attempt":"one"}]`},
		{`{"n":1e1001,"m":1e-1001}`, `[{"at":"not a time"}]`},
		{`{"n":1e99999}`, `[{"at":"0001-01-01T00:00:00Z","attempt":-1,"error":""}]`},
		{"{\"bad utf8\":\"\xff\"}", `"scalar"`},
		{`{`, `[`},
		{``, ``},
	} {
		f.Add([]byte(s.doc), []byte(s.errs))
	}
	drv := testdb.New(f, testdb.Options{})
	jobs := pgx.Identifier{drv.Schema(), "jobs"}.Sanitize()
	f.Fuzz(func(t *testing.T, doc, errs []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sameJSON := func(a, b []byte) bool {
			var same bool
			if err := drv.Pool().QueryRow(ctx, "SELECT $1::text::jsonb = $2::text::jsonb", string(a), string(b)).Scan(&same); err != nil {
				t.Fatalf("compare %q and %q as jsonb: %v", a, b, err)
			}
			return same
		}
		countJobs := func() int {
			var n int
			if err := drv.Pool().QueryRow(ctx, "SELECT count(*) FROM "+jobs).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}

		// Args and meta round trip.
		before := countJobs()
		inserted, err := drv.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{{
			Queue: "fuzz", Kind: "fuzz", Args: doc, Meta: doc, State: acidic.JobAvailable, MaxAttempts: 1,
		}}})

		var job *acidic.Job
		switch {
		case err != nil:
			if !errors.Is(err, acidic.ErrInvalid) || strings.Contains(err.Error(), "SQLSTATE") {
				t.Fatalf("insert %q: %v, want ErrInvalid before the database is asked", doc, err)
			}
			if json.Valid(doc) && utf8.Valid(doc) && storage.CheckJSON("doc", doc) == nil {
				t.Fatalf("insert %q failed though CheckJSON accepts it: %v", doc, err)
			}
			if n := countJobs(); n != before {
				t.Fatalf("a failed insert of %q left %d rows", doc, n-before)
			}
		case len(inserted) != 1:
			t.Fatalf("inserted %d jobs", len(inserted))
		default:
			if !json.Valid(doc) || !utf8.Valid(doc) {
				t.Fatalf("the storage accepted invalid JSON %q", doc)
			}
			job = inserted[0]
			got, err := drv.JobGet(ctx, storage.JobGetParams{ID: job.ID})
			if err != nil {
				t.Fatalf("JobGet %d: %v", job.ID, err)
			}
			if len(doc) > 0 && (!sameJSON(got.Args, doc) || !sameJSON(got.Meta, doc)) {
				t.Fatalf("args/meta %q came back as %q / %q", doc, got.Args, got.Meta)
			}
		}

		// The errors column holding arbitrary JSON.
		if job == nil {
			in, err := drv.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{{Queue: "fuzz", Kind: "fuzz", Args: json.RawMessage(`{}`), State: acidic.JobAvailable, MaxAttempts: 1}}})
			if err != nil {
				t.Fatal(err)
			}
			job = in[0]
		}
		if _, err := drv.Pool().Exec(ctx, "UPDATE "+jobs+" SET errors = $2::text::jsonb WHERE id = $1", job.ID, string(errs)); err == nil {
			got, getErr := drv.JobGet(ctx, storage.JobGetParams{ID: job.ID})
			list, listErr := drv.JobList(ctx, acidic.JobFilter{IDs: []int64{job.ID}})
			if (getErr == nil) != (listErr == nil) {
				t.Fatalf("errors %q: JobGet err %v but JobList err %v", errs, getErr, listErr)
			}
			if getErr != nil {
				if errors.Is(getErr, acidic.ErrNotFound) || !strings.Contains(getErr.Error(), "error history") {
					t.Fatalf("errors %q: JobGet failed without saying why: %v", errs, getErr)
				}
			} else {
				if len(list) != 1 || len(list[0].Errors) != len(got.Errors) {
					t.Fatalf("errors %q: JobList %+v, JobGet %+v", errs, list, got)
				}
				for _, e := range got.Errors {
					if _, err := json.Marshal(e); err != nil {
						t.Fatalf("errors %q decoded into %+v, which does not encode: %v", errs, e, err)
					}
				}
			}
		}

		// Run args: the same arguments twice make one run.
		if !json.Valid(doc) {
			if _, _, err := run.Create(ctx, drv, storage.RunInsertParams{ID: uuid.New(), IdempotencyKey: uuid.NewString(), Workflow: "fuzz",
				Args: doc, Queue: "fuzz", RecoveryPoint: "one", DefinitionHash: "h"}); !errors.Is(err, run.ErrArgs) {
				t.Fatalf("run.Create with invalid JSON %q: %v, want run.ErrArgs", doc, err)
			}
			return
		}
		key := uuid.NewString()
		first, created, err := run.Create(ctx, drv, storage.RunInsertParams{ID: uuid.New(), IdempotencyKey: key, Workflow: "fuzz",
			Args: doc, Queue: "fuzz", RecoveryPoint: "one", DefinitionHash: "h"})
		if err != nil {
			if !errors.Is(err, acidic.ErrInvalid) && !errors.Is(err, run.ErrArgs) || strings.Contains(err.Error(), "SQLSTATE") {
				t.Fatalf("run.Create %q: %v, want ErrInvalid (or run.ErrArgs) before the database is asked", doc, err)
			}
			return // the storage refuses it (\u0000, a lone surrogate, a number out of range)
		}
		if !created {
			t.Fatalf("run.Create %q: a fresh key found a run", doc)
		}
		for _, again := range [][]byte{doc, first.Args} {
			r, created, err := run.Create(ctx, drv, storage.RunInsertParams{ID: uuid.New(), IdempotencyKey: key, Workflow: "fuzz",
				Args: again, Queue: "fuzz", RecoveryPoint: "one", DefinitionHash: "h"})
			if err != nil || created || r.ID != first.ID {
				t.Fatalf("run.Create again with %q (stored as %s): created=%v err %v, want the existing run", again, first.Args, created, err)
			}
		}
	})
}
