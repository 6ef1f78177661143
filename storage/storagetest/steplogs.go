package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// What is kept with each step (storage.StepLogs), and tags on jobs and runs.
var stepLogTests = []conformanceTest{
	{"StepLogInsertInTx", testStepLogInsertInTx},
	{"StepLogInsertCaps", testStepLogInsertCaps},
	{"StepFailureInsertCaps", testStepFailureInsertCaps},
	{"StepLogsRefuseInvalidValues", testStepLogsRefuseInvalidValues},
	{"Tags", testTags},
	{"TagsRefuseInvalidValues", testTagsRefuseInvalidValues},
}

func logRecords(n int, msg string) []acidic.LogRecord {
	out := make([]acidic.LogRecord, n)
	for i := range out {
		out[i] = storage.LogRecordOf(time.Now(), "INFO", fmt.Sprintf("%s %d", msg, i), []byte(fmt.Sprintf(`{"i":%d}`, i)), 1)
	}
	return out
}

func stepDetail(ctx context.Context, t *testing.T, e storage.Executor, id uuid.UUID, pos int) storage.StepDetail {
	t.Helper()
	ds, err := e.StepDetails(ctx, storage.StepDetailsParams{RunID: id})
	if err != nil {
		t.Fatalf("StepDetails: %v", err)
	}
	for _, d := range ds {
		if d.Position == pos {
			return d
		}
	}
	return storage.StepDetail{Position: pos}
}

// Records written in a transaction that rolls back are gone; those of one
// that commits are kept, in order, with their fields.
func testStepLogInsertInTx(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	drv, ctx := newDriver(t), testCtx(t)
	r := insertRun(ctx, t, drv, "logs-tx")
	err := drv.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
		if err := tx.StepLogInsert(ctx, storage.StepLogInsertParams{RunID: r.ID, Position: 0, Records: logRecords(3, "rolled back")}); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx: %v", err)
	}
	if d := stepDetail(ctx, t, drv, r.ID, 0); len(d.Logs) != 0 {
		t.Fatalf("after a rollback: %+v", d.Logs)
	}
	want := logRecords(3, "kept")
	err = drv.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
		return tx.StepLogInsert(ctx, storage.StepLogInsertParams{RunID: r.ID, Position: 0, Records: want})
	})
	if err != nil {
		t.Fatal(err)
	}
	d := stepDetail(ctx, t, drv, r.ID, 0)
	if len(d.Logs) != 3 || d.LogsDropped != 0 {
		t.Fatalf("kept %+v", d)
	}
	for i, got := range d.Logs {
		w := want[i]
		if got.Message != w.Message || got.Level != w.Level || got.Attempt != w.Attempt || string(got.Attrs) != string(w.Attrs) || !near(got.Time, w.Time, time.Millisecond) {
			t.Errorf("record %d: %+v, want %+v", i, got, w)
		}
	}
	if d := stepDetail(ctx, t, drv, r.ID, 1); len(d.Logs) != 0 {
		t.Errorf("another step has logs: %+v", d.Logs)
	}
}

// The caps hold over many calls for one step: the first records are kept,
// the rest (and what the caller dropped) counted in the marker, last.
func testStepLogInsertCaps(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	drv, ctx := newDriver(t), testCtx(t)
	r := insertRun(ctx, t, drv, "logs-caps")
	insert := func(pos int, recs []acidic.LogRecord, dropped int) {
		t.Helper()
		if err := drv.StepLogInsert(ctx, storage.StepLogInsertParams{RunID: r.ID, Position: pos, Records: recs, Dropped: dropped}); err != nil {
			t.Fatal(err)
		}
	}
	insert(0, logRecords(60, "a"), 0)
	insert(0, logRecords(60, "b"), 7)
	insert(0, logRecords(1, "c"), 0)
	d := stepDetail(ctx, t, drv, r.ID, 0)
	kept := storage.MaxStepLogRecords
	if len(d.Logs) != kept+1 || d.LogsDropped != 120+7+1-kept {
		t.Fatalf("%d records, %d dropped; want %d and the marker, %d dropped", len(d.Logs), d.LogsDropped, kept, 120+7+1-kept)
	}
	if d.Logs[59].Message != "a 59" || d.Logs[kept-1].Message != fmt.Sprintf("b %d", kept-61) {
		t.Errorf("not the first records: %q, %q", d.Logs[59].Message, d.Logs[kept-1].Message)
	}
	if m := d.Logs[kept]; m.Level != "WARN" || string(m.Attrs) != fmt.Sprintf(`{"dropped":%d}`, d.LogsDropped) {
		t.Errorf("marker %+v", m)
	}

	// Bytes: records of the largest size fill the byte cap; once one is
	// dropped, a small one after it is dropped too.
	big := make([]acidic.LogRecord, 0, 30)
	for i := 0; i < 30; i++ {
		big = append(big, storage.LogRecordOf(time.Now(), "INFO", strings.Repeat("x", storage.MaxLogRecordBytes), nil, 1))
	}
	insert(1, big, 0)
	insert(1, logRecords(1, "small"), 0)
	d = stepDetail(ctx, t, drv, r.ID, 1)
	fit := storage.MaxStepLogBytes / storage.MaxLogRecordBytes
	if len(d.Logs) != fit+1 || d.LogsDropped != 30-fit+1 {
		t.Fatalf("bytes: %d records, %d dropped; want %d and the marker, %d dropped", len(d.Logs), d.LogsDropped, fit, 30-fit+1)
	}
	// Nothing to keep or count writes nothing.
	insert(2, nil, 0)
	if d := stepDetail(ctx, t, drv, r.ID, 2); len(d.Logs) != 0 || d.LogsDropped != 0 {
		t.Errorf("empty insert: %+v", d)
	}
}

// Failures are kept newest MaxStepFailures, oldest first, the forgotten
// ones counted.
func testStepFailureInsertCaps(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	drv, ctx := newDriver(t), testCtx(t)
	r := insertRun(ctx, t, drv, "failures")
	n := storage.MaxStepFailures + 3
	start := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := 1; i <= n; i++ {
		f := acidic.StepFailure{Attempt: i, Error: fmt.Sprintf("boom %d", i), StartedAt: start.Add(time.Duration(i) * time.Second),
			FailedAt: start.Add(time.Duration(i)*time.Second + time.Millisecond)}
		if err := drv.StepFailureInsert(ctx, storage.StepFailureInsertParams{RunID: r.ID, Position: 2, Failure: f}); err != nil {
			t.Fatal(err)
		}
	}
	d := stepDetail(ctx, t, drv, r.ID, 2)
	if len(d.Failures) != storage.MaxStepFailures || d.FailuresDropped != 3 {
		t.Fatalf("%d failures, %d dropped", len(d.Failures), d.FailuresDropped)
	}
	for i, f := range d.Failures {
		a := i + 4
		if f.Attempt != a || f.Error != fmt.Sprintf("boom %d", a) || !f.StartedAt.Equal(start.Add(time.Duration(a)*time.Second)) ||
			f.FailedAt.Sub(f.StartedAt) != time.Millisecond {
			t.Errorf("failure %d: %+v", i, f)
		}
	}
	// Text is cleaned, not refused.
	if err := drv.StepFailureInsert(ctx, storage.StepFailureInsertParams{RunID: r.ID, Position: 3, Failure: acidic.StepFailure{Attempt: 1, Error: "nul\x00here"}}); err != nil {
		t.Fatal(err)
	}
	if d := stepDetail(ctx, t, drv, r.ID, 3); len(d.Failures) != 1 || d.Failures[0].Error != "nulhere" || d.Failures[0].FailedAt.IsZero() {
		t.Errorf("cleaned failure: %+v", d.Failures)
	}
}

func testStepLogsRefuseInvalidValues(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	drv, ctx := newDriver(t), testCtx(t)
	r := insertRun(ctx, t, drv, "logs-invalid")
	ok := logRecords(1, "ok")[0]
	with := func(f func(*acidic.LogRecord)) []acidic.LogRecord {
		rec := ok
		f(&rec)
		return []acidic.LogRecord{ok, rec}
	}
	bad := map[string]storage.StepLogInsertParams{
		"no run":        {Records: logRecords(1, "x")},
		"negative pos":  {RunID: r.ID, Position: -1, Records: logRecords(1, "x")},
		"too many":      {RunID: r.ID, Records: logRecords(storage.MaxStepLogRecords+1, "x")},
		"NUL message":   {RunID: r.ID, Records: with(func(l *acidic.LogRecord) { l.Message = "a\x00b" })},
		"long message":  {RunID: r.ID, Records: with(func(l *acidic.LogRecord) { l.Message = strings.Repeat("x", storage.MaxLogRecordBytes+1) })},
		"no time":       {RunID: r.ID, Records: with(func(l *acidic.LogRecord) { l.Time = time.Time{} })},
		"no level":      {RunID: r.ID, Records: with(func(l *acidic.LogRecord) { l.Level = "" })},
		"attrs array":   {RunID: r.ID, Records: with(func(l *acidic.LogRecord) { l.Attrs = []byte(`[1]`) })},
		"attrs invalid": {RunID: r.ID, Records: with(func(l *acidic.LogRecord) { l.Attrs = []byte(`{"a":"\u0000"}`) })},
		"negative drop": {RunID: r.ID, Dropped: -1},
	}
	for name, p := range bad {
		if err := drv.StepLogInsert(ctx, p); !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := drv.StepFailureInsert(ctx, storage.StepFailureInsertParams{RunID: r.ID, Position: -1}); !errors.Is(err, acidic.ErrInvalid) {
		t.Errorf("failure at a negative position: %v, want ErrInvalid", err)
	}
	if d := stepDetail(ctx, t, drv, r.ID, 0); len(d.Logs) != 0 || len(d.Failures) != 0 {
		t.Errorf("invalid writes wrote %+v", d)
	}
}

// Jobs and runs keep their tags; the list filters match rows carrying
// every tag given.
func testTags(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	drv, ctx := newDriver(t), testCtx(t)
	tagged := func(tags ...string) storage.JobInsert {
		j := job("tags")
		j.Tags = tags
		return j
	}
	jobs := insertJobs(ctx, t, drv, tagged("eu", "vip"), tagged("eu"), tagged(), tagged("vip"))
	if !slices.Equal(jobs[0].Tags, []string{"eu", "vip"}) || jobs[2].Tags != nil {
		t.Errorf("inserted tags %v, %v", jobs[0].Tags, jobs[2].Tags)
	}
	u := tagged("unique")
	u.UniqueKey, u.UniqueStates = []byte("tags-unique"), acidic.NewJobStates(acidic.JobAvailable)
	uj, err := drv.JobInsertUnique(ctx, storage.JobInsertUniqueParams{Job: u})
	if err != nil || !slices.Equal(uj.Tags, []string{"unique"}) {
		t.Fatalf("unique job tags %v (%v)", uj, err)
	}
	list := func(tags ...string) []int64 {
		return ids(listJobs(ctx, t, drv, acidic.JobFilter{Queue: "tags", Tags: tags}))
	}
	if got := list("eu"); !slices.Equal(got, []int64{jobs[0].ID, jobs[1].ID}) {
		t.Errorf("jobs tagged eu: %v", got)
	}
	if got := list("eu", "vip"); !slices.Equal(got, []int64{jobs[0].ID}) {
		t.Errorf("jobs tagged eu and vip: %v", got)
	}
	if got := list(); len(got) != 5 {
		t.Errorf("no tag filter: %v", got)
	}
	if got := list("nope"); len(got) != 0 {
		t.Errorf("unknown tag: %v", got)
	}

	in := runInsert("tags-run")
	in.Tags = []string{"eu", "vip"}
	r1 := insertRunWith(ctx, t, drv, in)
	r2 := insertRun(ctx, t, drv, "tags-untagged")
	if !slices.Equal(r1.Tags, in.Tags) || r2.Tags != nil || !slices.Equal(getRun(ctx, t, drv, r1.ID).Tags, in.Tags) {
		t.Errorf("run tags %v, %v", r1.Tags, r2.Tags)
	}
	runs, err := drv.RunList(ctx, acidic.RunFilter{Tags: []string{"vip"}})
	if err != nil || len(runs) != 1 || runs[0].ID != r1.ID {
		t.Errorf("runs tagged vip: %v (%v)", runs, err)
	}
	runs, err = drv.RunList(ctx, acidic.RunFilter{Tags: []string{"vip", "us"}})
	if err != nil || len(runs) != 0 {
		t.Errorf("runs tagged vip and us: %v (%v)", runs, err)
	}
}

func testTagsRefuseInvalidValues(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	drv, ctx := newDriver(t), testCtx(t)
	many := make([]string, storage.MaxTags+1)
	for i := range many {
		many[i] = fmt.Sprint("t", i)
	}
	bad := map[string][]string{
		"empty":     {""},
		"too long":  {strings.Repeat("x", storage.MaxTagBytes+1)},
		"control":   {"a\nb"},
		"NUL":       {"a\x00b"},
		"twice":     {"a", "a"},
		"too many":  many,
		"bad UTF-8": {"\xff"},
	}
	for name, tags := range bad {
		j := job("bad-tags")
		j.Tags = tags
		if _, err := drv.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{job("bad-tags"), j}}); !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("job, %s: %v, want ErrInvalid", name, err)
		}
		in := runInsert("bad-tags-" + name)
		in.Tags = tags
		if _, _, err := drv.RunInsert(ctx, in); !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("run, %s: %v, want ErrInvalid", name, err)
		}
		if _, err := drv.JobList(ctx, acidic.JobFilter{Tags: tags}); !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("job filter, %s: %v, want ErrInvalid", name, err)
		}
		if _, err := drv.RunList(ctx, acidic.RunFilter{Tags: tags}); !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("run filter, %s: %v, want ErrInvalid", name, err)
		}
	}
	if jobs := listJobs(ctx, t, drv, acidic.JobFilter{Queue: "bad-tags"}); len(jobs) != 0 {
		t.Errorf("refused inserts wrote %d jobs", len(jobs))
	}
	if runs, err := drv.RunList(ctx, acidic.RunFilter{}); err != nil || len(runs) != 0 {
		t.Errorf("refused inserts wrote runs: %v (%v)", runs, err)
	}
}
