package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
)

// TestCheckJSONMatchesJsonb: storage.CheckJSON accepts exactly the JSON
// PostgreSQL's jsonb stores, so a write it lets through never fails in the
// database and one it refuses never could have been stored. The documents
// probe each rule at its edge: \u0000, surrogates, and numbers at the
// limits of numeric's digits before and after the decimal point.
func TestCheckJSONMatchesJsonb(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	pool := testdb.Pool(t, testdb.Options{MaxConns: 2})
	zeros := func(n int) string { return strings.Repeat("0", n) }
	docs := []string{
		`{}`, `"\u0000"`, `"a\\u0000"`, `"\\\u0000"`, `"\\\\u0000"`, `{"\u0000":1}`,
		`"\ud800"`, `"\udbff\udfff"`, `"\ud800\ud800"`, `"\udc00"`, `"\ud83d\ude00"`, `"\uD83D\uDE00"`, `"\ud800x"`, `"\ud800\u0041"`,
		`"\u0001\u001f\u007f\u0080\uffff\ufffe"`, `["\"\\\/\b\f\n\r\t"]`,
		`1e131071`, `1e131072`, `9.99e131071`, `0.1e131072`, `0.01e131073`, `1e-16383`, `1e-16384`, `1.5e-16383`,
		`0e99999999`, `0e-99999999`, `0.0e-16382`, `0.0e-16383`, `-0e-16383`, `1e2000000000`, `0e2000000000`, `1e-2000000000`,
		`1E+5`, `-1.000e3`, `123456789012345678901234567890`,
		"1" + zeros(131071), "1" + zeros(131072), "-1" + zeros(131071) + ".5", "1" + zeros(131073) + "e-2",
		"0." + zeros(16382) + "1", "0." + zeros(16383) + "1", "1." + zeros(16383), "1." + zeros(16384), "0." + zeros(16382) + "1e1",
		"[1e131071, 1e131072]", "\"\xff\"", "\"\xed\xa0\x80\"",
	}
	rng := rand.New(rand.NewSource(1))
	for range 200 {
		var b strings.Builder
		if rng.Intn(2) == 0 {
			b.WriteByte('-')
		}
		b.WriteString(fmt.Sprint(1 + rng.Intn(9)))
		b.WriteString(zeros(rng.Intn(3)))
		if rng.Intn(2) == 0 {
			b.WriteString("." + zeros(rng.Intn(3)) + fmt.Sprint(rng.Intn(10)))
		}
		exp := []int{131070, 131071, 131072, 16381, 16382, 16383, 16384, 0, 1, 2}[rng.Intn(10)]
		if rng.Intn(2) == 0 {
			exp = -exp
		}
		fmt.Fprintf(&b, "e%d", exp)
		docs = append(docs, b.String())
		docs = append(docs, fmt.Sprintf(`"\u%04x\u%04x"`, 0xd7f0+rng.Intn(0x900), 0xd7f0+rng.Intn(0x900)))
	}
	for _, doc := range docs {
		checkErr := storage.CheckJSON("doc", []byte(doc))
		var dbErr error
		if utf8.ValidString(doc) { // PostgreSQL refuses invalid UTF-8 before it parses
			var ok bool
			dbErr = pool.QueryRow(ctx, "SELECT $1::text::jsonb IS NOT NULL", doc).Scan(&ok)
		} else {
			dbErr = errors.New("invalid UTF-8")
		}
		if (checkErr == nil) != (dbErr == nil) {
			t.Errorf("%.60s (%d bytes): CheckJSON says %v, jsonb says %v", doc, len(doc), checkErr, dbErr)
		}
	}
}

// rowCounts counts the rows of every table of the driver's schema, so a test
// can tell that a refused write wrote nothing.
func rowCounts(ctx context.Context, t *testing.T, drv *postgres.Driver) string {
	t.Helper()
	var out string
	err := drv.Pool().QueryRow(ctx, "SELECT"+
		" (SELECT count(*) FROM "+table(drv, "jobs")+")::text || '/' ||"+
		" (SELECT count(*) FROM "+table(drv, "runs")+") || '/' ||"+
		" (SELECT count(*) FROM "+table(drv, "run_steps")+") || '/' ||"+
		" (SELECT count(*) FROM "+table(drv, "outbox")+") || '/' ||"+
		" (SELECT md5(string_agg(r::text, '|' ORDER BY r.id)) FROM "+table(drv, "runs")+" r) || '/' ||"+
		" (SELECT md5(string_agg(j::text, '|' ORDER BY j.id)) FROM "+table(drv, "jobs")+" j)").Scan(&out)
	if err != nil {
		t.Fatalf("count rows: %v", err)
	}
	return out
}

// TestWritesRefuseValuesBeyondLimits: every write path of the driver refuses
// a name, key, JSON document or time beyond the storage's limits with
// acidic.ErrInvalid, naming the field, before the database is asked (no
// SQLSTATE), and writes nothing.
func TestWritesRefuseValuesBeyondLimits(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	r := leasedRun(ctx, t, drv, "k", "tok")
	running := insertJobs(ctx, t, drv, job("running"))[0]
	fetchOne(ctx, t, drv, "running", "w")
	before := rowCounts(ctx, t, drv)

	year300000 := time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)
	long := strings.Repeat("x", 8000)
	jobWith := func(f func(*storage.JobInsert)) storage.JobInsert { j := job("q"); f(&j); return j }
	runWith := func(f func(*storage.RunInsertParams)) storage.RunInsertParams {
		in := runInsert(uuid.NewString())
		f(&in)
		return in
	}
	step := func(name string) *acidic.Step {
		return &acidic.Step{Position: 0, Name: name, State: acidic.StepSucceeded, Attempt: 1, StartedAt: time.Now()}
	}
	badJobs := map[string]struct {
		j       storage.JobInsert
		mention string
	}{
		"NUL in queue":         {jobWith(func(j *storage.JobInsert) { j.Queue = "q\x00" }), "queue"},
		"8000-byte queue":      {jobWith(func(j *storage.JobInsert) { j.Queue = long }), "queue"},
		"invalid UTF-8 kind":   {jobWith(func(j *storage.JobInsert) { j.Kind = "k\xff" }), "kind"},
		"newline in kind":      {jobWith(func(j *storage.JobInsert) { j.Kind = "k\n" }), "kind"},
		"year 300000":          {jobWith(func(j *storage.JobInsert) { j.ScheduledAt = year300000 }), "ScheduledAt"},
		"invalid UTF-8 args":   {jobWith(func(j *storage.JobInsert) { j.Args = json.RawMessage("{\"a\":\"\xff\"}") }), "args"},
		"NUL escape in args":   {jobWith(func(j *storage.JobInsert) { j.Args = json.RawMessage(`{"a":"\u0000"}`) }), "args"},
		"lone surrogate meta":  {jobWith(func(j *storage.JobInsert) { j.Meta = json.RawMessage(`{"a":"\ud800"}`) }), "meta"},
		"number beyond jsonb":  {jobWith(func(j *storage.JobInsert) { j.Args = json.RawMessage(`[1e200000]`) }), "args"},
		"args that are absent": {jobWith(func(j *storage.JobInsert) { j.Args = nil }), "args"},
	}
	for name, c := range badJobs {
		_, err := drv.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{job("q"), c.j}})
		wantInvalid(t, "JobInsertMany: "+name, err, c.mention)
		u := c.j
		u.UniqueKey, u.UniqueStates = []byte("key "+name), acidic.NewJobStates(acidic.JobAvailable)
		_, err = drv.JobInsertUnique(ctx, storage.JobInsertUniqueParams{Job: u, Replace: storage.JobReplace{}})
		wantInvalid(t, "JobInsertUnique: "+name, err, c.mention)
	}
	badRuns := map[string]struct {
		in      storage.RunInsertParams
		mention string
	}{
		"2704-byte key":       {runWith(func(in *storage.RunInsertParams) { in.IdempotencyKey = strings.Repeat("k", 2704) }), "idempotency key"},
		"1025-byte key":       {runWith(func(in *storage.RunInsertParams) { in.IdempotencyKey = strings.Repeat("k", 1025) }), "idempotency key"},
		"NUL in key":          {runWith(func(in *storage.RunInsertParams) { in.IdempotencyKey = "k\x00" }), "idempotency key"},
		"invalid UTF-8 key":   {runWith(func(in *storage.RunInsertParams) { in.IdempotencyKey = "k\xff" }), "idempotency key"},
		"empty key":           {runWith(func(in *storage.RunInsertParams) { in.IdempotencyKey = "" }), "idempotency key"},
		"NUL in workflow":     {runWith(func(in *storage.RunInsertParams) { in.Workflow = "w\x00" }), "workflow"},
		"8000-byte queue":     {runWith(func(in *storage.RunInsertParams) { in.Queue = long }), "queue"},
		"invalid UTF-8 args":  {runWith(func(in *storage.RunInsertParams) { in.Args = json.RawMessage("\"\xff\"") }), "args"},
		"NUL in step name":    {runWith(func(in *storage.RunInsertParams) { in.RecoveryPoint = "s\x00" }), "recovery point"},
		"NUL in parent step":  {runWith(func(in *storage.RunInsertParams) { in.ParentStep = "p\x00" }), "parent step"},
		"NUL escape in args":  {runWith(func(in *storage.RunInsertParams) { in.Args = json.RawMessage(`["\u0000"]`) }), "args"},
		"surrogate in args":   {runWith(func(in *storage.RunInsertParams) { in.Args = json.RawMessage(`["\udfff"]`) }), "args"},
		"number beyond jsonb": {runWith(func(in *storage.RunInsertParams) { in.Args = json.RawMessage(`1e-20000`) }), "args"},
	}
	for name, c := range badRuns {
		_, _, err := drv.RunInsert(ctx, c.in)
		wantInvalid(t, "RunInsert: "+name, err, c.mention)
	}
	upd := func(f func(*storage.RunUpdateParams)) storage.RunUpdateParams {
		u := storage.RunUpdateParams{ID: r.ID, Token: "tok", State: acidic.RunRunning, RecoveryPoint: "s", Attrs: json.RawMessage(`{}`), Step: step("s")}
		f(&u)
		return u
	}
	for name, u := range map[string]storage.RunUpdateParams{
		"NUL in state":         upd(func(u *storage.RunUpdateParams) { u.Attrs = json.RawMessage(`{"a":"\u0000"}`) }),
		"NUL in result":        upd(func(u *storage.RunUpdateParams) { u.Result = json.RawMessage(`"\u0000"`) }),
		"NUL in step result":   upd(func(u *storage.RunUpdateParams) { u.Step.Result = json.RawMessage(`"\u0000"`) }),
		"NUL in step name":     upd(func(u *storage.RunUpdateParams) { u.Step.Name = "s\x00" }),
		"NUL in recovery pt.":  upd(func(u *storage.RunUpdateParams) { u.RecoveryPoint = "s\x00" }),
		"8000-byte step name":  upd(func(u *storage.RunUpdateParams) { u.Step.Name = long }),
		"invalid UTF-8 attrs":  upd(func(u *storage.RunUpdateParams) { u.Attrs = json.RawMessage("\"\xff\"") }),
		"lone surrogate attrs": upd(func(u *storage.RunUpdateParams) { u.Attrs = json.RawMessage(`"\ud800"`) }),
	} {
		_, err := drv.RunUpdate(ctx, u)
		wantInvalid(t, "RunUpdate: "+name, err, "")
		_, err = drv.InStepTx(ctx, func(context.Context, storage.Tx) (storage.StepCommit, error) {
			return storage.StepCommit{Update: u}, nil
		})
		wantInvalid(t, "InStepTx: "+name, err, "")
	}
	_, err := drv.RunRelease(ctx, storage.RunReleaseParams{ID: r.ID, Token: "tok", State: acidic.RunPending, Step: step("s\xff")})
	wantInvalid(t, "RunRelease: invalid UTF-8 step name", err, "step name")
	_, err = drv.JobFinish(ctx, storage.JobFinishParams{JobAttempt: attempt1(running.ID), State: acidic.JobRetryable, ScheduledAt: year300000})
	wantInvalid(t, "JobFinish: year 300000", err, "ScheduledAt")
	for name, m := range map[string]storage.OutboxInsert{
		"NUL in topic":         {Topic: "t\x00", Payload: json.RawMessage(`{}`)},
		"empty topic":          {Topic: "", Payload: json.RawMessage(`{}`)},
		"2704-byte key":        {Topic: "t", Key: strings.Repeat("k", 2704), Payload: json.RawMessage(`{}`)},
		"invalid UTF-8 key":    {Topic: "t", Key: "\xff", Payload: json.RawMessage(`{}`)},
		"NUL escape payload":   {Topic: "t", Payload: json.RawMessage(`"\u0000"`)},
		"payload that is none": {Topic: "t"},
	} {
		err := drv.OutboxInsert(ctx, storage.OutboxInsertParams{Messages: []storage.OutboxInsert{{Topic: "t", Payload: json.RawMessage(`{}`)}, m}})
		wantInvalid(t, "OutboxInsert: "+name, err, "")
	}
	if after := rowCounts(ctx, t, drv); after != before {
		t.Errorf("refused writes changed rows: %s, was %s", after, before)
	}
}

func wantInvalid(t *testing.T, what string, err error, mention string) {
	t.Helper()
	switch {
	case !errors.Is(err, acidic.ErrInvalid):
		t.Errorf("%s: err = %v, want ErrInvalid", what, err)
	case strings.Contains(err.Error(), "SQLSTATE"):
		t.Errorf("%s: err = %v, an error from the database; want it refused before", what, err)
	case !strings.Contains(err.Error(), mention):
		t.Errorf("%s: err = %v, does not name %q", what, err, mention)
	case len(err.Error()) > 400:
		t.Errorf("%s: a %d-byte error message", what, len(err.Error()))
	}
}

// TestErrorTextIsStoredClean: error text with NUL or invalid UTF-8, which
// PostgreSQL cannot store, or of any length, is stored as storage.Text
// leaves it by every write that records one, instead of failing the write.
func TestErrorTextIsStoredClean(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	dirty := "boom \x00 \xff end"
	clean := "boom  \uFFFD end"
	huge := strings.Repeat("é", 1<<19) // 1 MB
	for _, text := range []string{dirty, huge} {
		want := storage.Text(text)
		if text == dirty && want != clean {
			t.Fatalf("Text(%q) = %q, want %q", dirty, want, clean)
		}

		// A job's attempt error (JobFinish).
		q := "text-" + uuid.NewString()
		j := insertJobs(ctx, t, drv, job(q))[0]
		fetchOne(ctx, t, drv, q, "w")
		ended, err := drv.JobFinish(ctx, storage.JobFinishParams{JobAttempt: attempt1(j.ID), State: acidic.JobRetryable,
			ScheduledAt: time.Now(), Error: &acidic.AttemptError{Attempt: 1, At: time.Now(), Error: text}})
		if err != nil || !ended {
			t.Fatalf("JobFinish with a %d-byte dirty error: %v, %v", len(text), ended, err)
		}
		if got := getJob(ctx, t, drv, j.ID); len(got.Errors) != 1 || got.Errors[0].Error != want {
			t.Errorf("job error stored as %d bytes, want Text's %d", len(got.Errors[0].Error), len(want))
		}

		// A step's failure (RunRelease with a step) and the run's error.
		r := leasedRun(ctx, t, drv, uuid.NewString(), "tok")
		rel, err := drv.RunRelease(ctx, storage.RunReleaseParams{ID: r.ID, Token: "tok", State: acidic.RunPending, Error: text,
			Step: &acidic.Step{Position: 0, Name: "s", State: acidic.StepFailed, Attempt: 1, Error: text, StartedAt: time.Now()}})
		if err != nil {
			t.Fatalf("RunRelease with a dirty error: %v", err)
		}
		if rel.Error != want {
			t.Errorf("run error stored as %.40q (%d bytes), want Text's", rel.Error, len(rel.Error))
		}
		if steps := runSteps(ctx, t, drv, r.ID); len(steps) != 1 || steps[0].Error != want {
			t.Errorf("step error not stored as Text leaves it: %+v", steps)
		}

		// A step's progress write that carries an error (RunUpdate).
		r = leasedRun(ctx, t, drv, uuid.NewString(), "tok")
		up, err := drv.RunUpdate(ctx, storage.RunUpdateParams{ID: r.ID, Token: "tok", State: acidic.RunFailed, RecoveryPoint: "s", Release: true, Error: text,
			Step: &acidic.Step{Position: 0, Name: "s", State: acidic.StepFailed, Attempt: 1, Error: text, StartedAt: time.Now()}})
		if err != nil {
			t.Fatalf("RunUpdate with a dirty error: %v", err)
		}
		if up.Error != want {
			t.Errorf("RunUpdate stored the error as %.40q, want Text's", up.Error)
		}
		if steps := runSteps(ctx, t, drv, r.ID); len(steps) != 1 || steps[0].Error != want {
			t.Errorf("RunUpdate's step error not stored as Text leaves it")
		}

		// An operator's state change with a reason (RunSetState).
		r = insertRun(ctx, t, drv, uuid.NewString())
		set, changed, err := drv.RunSetState(ctx, storage.RunSetStateParams{ID: r.ID, From: []acidic.RunState{acidic.RunPending}, To: acidic.RunCancelled, Error: text})
		if err != nil || !changed || set.Error != want {
			t.Errorf("RunSetState with a dirty reason: changed %v, err %v", changed, err)
		}

		// A failed delivery of an outbox message (OutboxFailed).
		if err := drv.OutboxInsert(ctx, storage.OutboxInsertParams{Messages: []storage.OutboxInsert{{Topic: "t", Key: uuid.NewString(), Payload: json.RawMessage(`{}`)}}}); err != nil {
			t.Fatal(err)
		}
		claimed, err := drv.OutboxClaim(ctx, storage.OutboxClaimParams{Limit: 1, Lease: time.Minute})
		if err != nil || len(claimed) != 1 {
			t.Fatalf("OutboxClaim: %v, %v", claimed, err)
		}
		if err := drv.OutboxFailed(ctx, storage.OutboxFailedParams{ID: claimed[0].ID, Attempt: claimed[0].Attempts, RetryIn: time.Hour, Error: text}); err != nil {
			t.Fatalf("OutboxFailed with a dirty error: %v", err)
		}
		msgs, err := drv.OutboxList(ctx, storage.OutboxListParams{PendingOnly: true, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.ID == claimed[0].ID && m.LastError != want {
				t.Errorf("outbox last_error stored as %.40q, want Text's", m.LastError)
			}
		}
		if _, err := drv.Pool().Exec(ctx, "DELETE FROM "+table(drv, "outbox")); err != nil {
			t.Fatal(err)
		}
	}
}

// TestInvalidSchemaNameIsRefused: PostgreSQL cuts identifiers to 63 bytes,
// so two longer names would share one schema (under two migration locks).
// Such a name, and one with NUL, invalid UTF-8 or PostgreSQL's reserved
// prefix, makes every call of the driver and its migrator fail with
// postgres.ErrInvalidSchema (and acidic.ErrInvalid), and creates nothing.
func TestInvalidSchemaNameIsRefused(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	pool := testdb.Pool(t, testdb.Options{MaxConns: 2})
	base := testdb.SchemaName(t)
	long := base + strings.Repeat("x", 64-len(base))
	t.Cleanup(func() { testdb.DropSchema(t, long[:63]) })
	for _, c := range []struct{ schema, mention string }{
		{long, "64 bytes; PostgreSQL keeps at most 63"},
		{base + "\x00", "U+0000"},
		{base + "\xff", "UTF-8"},
		{"pg_" + base, `"pg_"`},
	} {
		drv := postgres.New(pool, postgres.Options{Schema: c.schema})
		calls := map[string]error{}
		_, calls["Migrator().Up"] = drv.Migrator().Up(ctx)
		_, calls["Migrator().Status"] = drv.Migrator().Status(ctx)
		_, calls["JobInsertMany"] = drv.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{job("q")}})
		_, calls["JobFetch"] = drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 1, WorkerID: "w"})
		_, calls["JobComplete"] = drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{{ID: 1, Attempt: 1}}})
		_, calls["RunGet"] = drv.RunGet(ctx, storage.RunGetParams{ID: uuid.New()})
		_, _, calls["RunInsert"] = drv.RunInsert(ctx, runInsert("k"))
		calls["Notify"] = drv.Notify(ctx, storage.NotifyParams{Topic: storage.TopicInsert, Payload: "q"})
		calls["InTx"] = drv.InTx(ctx, storage.ReadCommitted, func(context.Context, storage.Tx) error { return nil })
		_, calls["InStepTx"] = drv.InStepTx(ctx, func(context.Context, storage.Tx) (storage.StepCommit, error) {
			return storage.StepCommit{}, nil
		})
		_, calls["NewListener"] = drv.NewListener(ctx)
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, calls["WrapTx(...).JobGet"] = drv.WrapTx(tx).JobGet(ctx, storage.JobGetParams{ID: 1})
		_ = tx.Rollback(ctx)
		for name, err := range calls {
			if !errors.Is(err, postgres.ErrInvalidSchema) || !errors.Is(err, acidic.ErrInvalid) || !strings.Contains(err.Error(), c.mention) {
				t.Errorf("schema %q: %s: err = %v, want ErrInvalidSchema saying %q", c.schema, name, err, c.mention)
			}
		}
		if err := postgres.CheckSchema(c.schema); !errors.Is(err, postgres.ErrInvalidSchema) {
			t.Errorf("CheckSchema(%q) = %v", c.schema, err)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE $1 || '%'", base[:20]).Scan(&n); err != nil || n != 0 {
		t.Errorf("refused schema names created %d schemas (%v)", n, err)
	}
	for _, ok := range []string{"", "acidic", base + strings.Repeat("x", 63-len(base)), `a"b; DROP SCHEMA public; $$ --`, "Zähler"} {
		if err := postgres.CheckSchema(ok); err != nil {
			t.Errorf("CheckSchema(%q) = %v, want nil", ok, err)
		}
	}
}
