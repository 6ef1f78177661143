package storagetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

var periodicTests = []conformanceTest{
	{"PeriodicRegister", testPeriodicRegister},
	{"PeriodicRegisterRefusesInvalid", testPeriodicRegisterRefusesInvalid},
	{"PeriodicList", testPeriodicList},
	{"PeriodicDueAndAdvance", testPeriodicDueAndAdvance},
	{"PeriodicDueSkipsLockedRows", testPeriodicDueSkipsLockedRows},
	{"PeriodicDueConcurrent", testPeriodicDueConcurrent},
}

// base is a whole second, as cron periods are, in the years a store holds.
var periodicBase = time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)

func periodicInsert(name string, next time.Time) storage.PeriodicInsert {
	return storage.PeriodicInsert{Name: name, Kind: "report", Spec: "@hourly", TimeZone: "UTC", Missed: acidic.MissedRunOnce, NextRunAt: next}
}

func registerPeriodic(ctx context.Context, t *testing.T, e storage.Executor, s ...storage.PeriodicInsert) []*acidic.Periodic {
	t.Helper()
	rows, err := e.PeriodicRegister(ctx, storage.PeriodicRegisterParams{Schedules: s})
	if err != nil {
		t.Fatalf("PeriodicRegister: %v", err)
	}
	return rows
}

func listPeriodic(ctx context.Context, t *testing.T, e storage.Executor, names ...string) []*acidic.Periodic {
	t.Helper()
	rows, err := e.PeriodicList(ctx, storage.PeriodicListParams{Names: names})
	if err != nil {
		t.Fatalf("PeriodicList(%v): %v", names, err)
	}
	return rows
}

func periodicNames(rows []*acidic.Periodic) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Name
	}
	return out
}

// getPeriodic returns one schedule, failing the test when it is missing.
func getPeriodic(ctx context.Context, t *testing.T, e storage.Executor, name string) *acidic.Periodic {
	t.Helper()
	rows := listPeriodic(ctx, t, e, name)
	if len(rows) != 1 {
		t.Fatalf("PeriodicList(%s) = %d rows, want 1", name, len(rows))
	}
	return rows[0]
}

// testPeriodicRegister: a new schedule is stored as given; registering it
// again unchanged writes nothing and keeps its next run (also one long
// past); a new kind or policy is written but keeps the next run; a new spec
// or time zone starts the schedule at the given next run.
func testPeriodicRegister(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)

	in := periodicInsert("nightly", periodicBase)
	got := registerPeriodic(ctx, t, drv, in)
	if len(got) != 1 {
		t.Fatalf("PeriodicRegister of a new schedule returned %d rows, want 1", len(got))
	}
	s := got[0]
	if s.Name != in.Name || s.Kind != in.Kind || s.Spec != in.Spec || s.TimeZone != in.TimeZone || s.Missed != in.Missed ||
		!s.NextRunAt.Equal(in.NextRunAt) || s.LastRunAt != nil || s.UpdatedAt.IsZero() {
		t.Fatalf("registered %+v, want the schedule as given, never run", s)
	}

	// Again, with a later next run (a node starting later): nothing changes.
	again := in
	again.NextRunAt = periodicBase.Add(5 * time.Hour)
	if got := registerPeriodic(ctx, t, drv, again); len(got) != 0 {
		t.Fatalf("registering an unchanged schedule wrote %d rows, want none", len(got))
	}
	if s := getPeriodic(ctx, t, drv, "nightly"); !s.NextRunAt.Equal(periodicBase) {
		t.Fatalf("next run after an unchanged registration = %s, want %s kept", s.NextRunAt, periodicBase)
	}

	// A new kind and policy: written, next run kept.
	changed := again
	changed.Kind, changed.Missed = "report.v2", acidic.MissedSkip
	got = registerPeriodic(ctx, t, drv, changed)
	if len(got) != 1 || got[0].Kind != "report.v2" || got[0].Missed != acidic.MissedSkip || !got[0].NextRunAt.Equal(periodicBase) {
		t.Fatalf("registering a new kind and policy returned %+v, want them written and next run %s kept", got, periodicBase)
	}

	// A new spec: the schedule starts again at the given next run.
	respec := changed
	respec.Spec = "@daily"
	got = registerPeriodic(ctx, t, drv, respec)
	if len(got) != 1 || got[0].Spec != "@daily" || !got[0].NextRunAt.Equal(respec.NextRunAt) {
		t.Fatalf("registering a new spec returned %+v, want next run %s", got, respec.NextRunAt)
	}
	// A new time zone likewise.
	rezone := respec
	rezone.TimeZone, rezone.NextRunAt = "Europe/Paris", periodicBase.Add(7*time.Hour)
	got = registerPeriodic(ctx, t, drv, rezone)
	if len(got) != 1 || got[0].TimeZone != "Europe/Paris" || !got[0].NextRunAt.Equal(rezone.NextRunAt) {
		t.Fatalf("registering a new time zone returned %+v, want next run %s", got, rezone.NextRunAt)
	}

	// Several at once, one of them known.
	got = registerPeriodic(ctx, t, drv, rezone, periodicInsert("a", periodicBase), periodicInsert("b", periodicBase))
	if names := periodicNames(got); !slices.Equal(names, []string{"a", "b"}) && !slices.Equal(names, []string{"b", "a"}) {
		t.Fatalf("registering two new schedules and one unchanged wrote %v, want a and b", names)
	}
}

// testPeriodicRegisterRefusesInvalid: values the storage does not hold,
// and a name given twice, are acidic.ErrInvalid and write nothing.
func testPeriodicRegisterRefusesInvalid(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	mod := func(f func(*storage.PeriodicInsert)) storage.PeriodicInsert {
		in := periodicInsert("s", periodicBase)
		f(&in)
		return in
	}
	bad := map[string][]storage.PeriodicInsert{
		"empty name":      {mod(func(in *storage.PeriodicInsert) { in.Name = "" })},
		"NUL in name":     {mod(func(in *storage.PeriodicInsert) { in.Name = "a\x00b" })},
		"empty kind":      {mod(func(in *storage.PeriodicInsert) { in.Kind = "" })},
		"empty spec":      {mod(func(in *storage.PeriodicInsert) { in.Spec = "" })},
		"empty zone":      {mod(func(in *storage.PeriodicInsert) { in.TimeZone = "" })},
		"unknown policy":  {mod(func(in *storage.PeriodicInsert) { in.Missed = "sometimes" })},
		"zero next run":   {mod(func(in *storage.PeriodicInsert) { in.NextRunAt = time.Time{} })},
		"year 10000":      {mod(func(in *storage.PeriodicInsert) { in.NextRunAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) })},
		"one name twice":  {periodicInsert("twice", periodicBase), periodicInsert("twice", periodicBase)},
		"one bad of many": {periodicInsert("good", periodicBase), mod(func(in *storage.PeriodicInsert) { in.Kind = "" })},
	}
	for name, s := range bad {
		_, err := drv.PeriodicRegister(ctx, storage.PeriodicRegisterParams{Schedules: s})
		if !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("%s: PeriodicRegister = %v, want acidic.ErrInvalid", name, err)
		}
	}
	if rows := listPeriodic(ctx, t, drv); len(rows) != 0 {
		t.Fatalf("refused registrations wrote %v", periodicNames(rows))
	}
	registerPeriodic(ctx, t, drv, periodicInsert("s", periodicBase))
	_, _, err := drv.PeriodicAdvance(ctx, storage.PeriodicAdvanceParams{Name: "s", From: periodicBase})
	if !errors.Is(err, acidic.ErrInvalid) {
		t.Errorf("PeriodicAdvance to a zero next run = %v, want acidic.ErrInvalid", err)
	}
	if s := getPeriodic(ctx, t, drv, "s"); !s.NextRunAt.Equal(periodicBase) {
		t.Errorf("a refused advance moved the schedule to %s", s.NextRunAt)
	}
}

// testPeriodicList: every schedule by name, or those named.
func testPeriodicList(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	if rows := listPeriodic(ctx, t, drv); len(rows) != 0 {
		t.Fatalf("a fresh store lists %v", periodicNames(rows))
	}
	registerPeriodic(ctx, t, drv, periodicInsert("c", periodicBase), periodicInsert("a", periodicBase), periodicInsert("b", periodicBase))
	if got := periodicNames(listPeriodic(ctx, t, drv)); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("PeriodicList() = %v, want a, b, c", got)
	}
	if got := periodicNames(listPeriodic(ctx, t, drv, "c", "a", "nope")); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("PeriodicList(c, a, nope) = %v, want a, c", got)
	}
}

// testPeriodicDueAndAdvance: due means the next run is at or before now
// and the schedule is named; an advance happens only from the next run
// read, sets the last run when given and keeps it otherwise.
func testPeriodicDueAndAdvance(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	registerPeriodic(ctx, t, drv, periodicInsert("early", periodicBase), periodicInsert("late", periodicBase.Add(time.Hour)),
		periodicInsert("other", periodicBase))
	due := func(now time.Time, limit int, names ...string) []string {
		t.Helper()
		rows, err := drv.PeriodicDue(ctx, storage.PeriodicDueParams{Names: names, Now: now, Limit: limit})
		if err != nil {
			t.Fatalf("PeriodicDue: %v", err)
		}
		return periodicNames(rows)
	}
	if got := due(periodicBase.Add(-time.Second), 10, "early", "late"); len(got) != 0 {
		t.Errorf("due a second before any next run: %v", got)
	}
	if got := due(periodicBase, 10, "early", "late"); !slices.Equal(got, []string{"early"}) {
		t.Errorf("due at early's next run: %v, want early", got)
	}
	if got := due(periodicBase.Add(2*time.Hour), 10, "early", "late"); !slices.Equal(got, []string{"early", "late"}) {
		t.Errorf("due after both: %v, want early, late (earliest first)", got)
	}
	if got := due(periodicBase.Add(2*time.Hour), 0, "early", "late"); !slices.Equal(got, []string{"early"}) {
		t.Errorf("due with limit 0: %v, want one row", got)
	}
	if got := due(periodicBase.Add(2*time.Hour), 10); len(got) != 0 {
		t.Errorf("due without names: %v, want none", got)
	}

	next := periodicBase.Add(time.Hour)
	s, ok, err := drv.PeriodicAdvance(ctx, storage.PeriodicAdvanceParams{Name: "early", From: periodicBase, LastRunAt: &periodicBase, NextRunAt: next})
	if err != nil || !ok || !s.NextRunAt.Equal(next) || s.LastRunAt == nil || !s.LastRunAt.Equal(periodicBase) {
		t.Fatalf("PeriodicAdvance = %+v, %v, %v; want moved to %s, last run %s", s, ok, err, next, periodicBase)
	}
	// From a next run no longer stored: nothing changes.
	s, ok, err = drv.PeriodicAdvance(ctx, storage.PeriodicAdvanceParams{Name: "early", From: periodicBase, NextRunAt: next.Add(time.Hour)})
	if err != nil || ok || s == nil || !s.NextRunAt.Equal(next) {
		t.Fatalf("PeriodicAdvance from a stale next run = %+v, %v, %v; want unchanged at %s and false", s, ok, err, next)
	}
	// Without a last run (skipped periods): the last run stays.
	s, ok, err = drv.PeriodicAdvance(ctx, storage.PeriodicAdvanceParams{Name: "early", From: next, NextRunAt: next.Add(time.Hour)})
	if err != nil || !ok || s.LastRunAt == nil || !s.LastRunAt.Equal(periodicBase) {
		t.Fatalf("PeriodicAdvance without a last run = %+v, %v, %v; want the last run %s kept", s, ok, err, periodicBase)
	}
	// An unknown schedule.
	s, ok, err = drv.PeriodicAdvance(ctx, storage.PeriodicAdvanceParams{Name: "nope", From: periodicBase, NextRunAt: next})
	if err != nil || ok || s != nil {
		t.Fatalf("PeriodicAdvance of an unknown schedule = %+v, %v, %v; want nil, false, nil", s, ok, err)
	}
	if s := getPeriodic(ctx, t, drv, "other"); !s.NextRunAt.Equal(periodicBase) || s.LastRunAt != nil {
		t.Fatalf("advancing one schedule changed another: %+v", s)
	}
}

// testPeriodicDueSkipsLockedRows: a due row locked by one transaction is
// skipped by another; once the first moved it on and committed, it is no
// longer due.
func testPeriodicDueSkipsLockedRows(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	registerPeriodic(ctx, t, drv, periodicInsert("s", periodicBase))
	now := periodicBase.Add(time.Minute)
	p := storage.PeriodicDueParams{Names: []string{"s"}, Now: now, Limit: 1}
	locked := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
			rows, err := tx.PeriodicDue(ctx, p)
			if err != nil {
				return err
			}
			if len(rows) != 1 {
				return errors.New("the first transaction found nothing due")
			}
			close(locked)
			<-release
			_, _, err = tx.PeriodicAdvance(ctx, storage.PeriodicAdvanceParams{Name: "s", From: rows[0].NextRunAt, LastRunAt: &rows[0].NextRunAt, NextRunAt: periodicBase.Add(time.Hour)})
			return err
		})
	}()
	select {
	case <-locked:
	case err := <-done:
		t.Fatal(err)
	}
	second := func() error {
		return drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
			rows, err := tx.PeriodicDue(ctx, p)
			if err == nil && len(rows) != 0 {
				t.Errorf("PeriodicDue returned %v, locked by another transaction", periodicNames(rows))
			}
			return err
		})
	}
	if drv.Capabilities().SingleWriter {
		// The second transaction waits for the first to end, then finds
		// the schedule moved on.
		secondDone := make(chan error, 1)
		go func() { secondDone <- second() }()
		close(release)
		if err := <-secondDone; err != nil {
			t.Fatal(err)
		}
	} else {
		if err := second(); err != nil {
			t.Fatal(err)
		}
		close(release)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if rows, err := drv.PeriodicDue(ctx, p); err != nil || len(rows) != 0 {
		t.Fatalf("after the advance PeriodicDue = %v, %v; want nothing due", periodicNames(rows), err)
	}
}

// testPeriodicDueConcurrent: transactions racing for one due schedule, each
// moving it on when it finds it due, move it on once per period.
func testPeriodicDueConcurrent(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	registerPeriodic(ctx, t, drv, periodicInsert("s", periodicBase))
	const periods, racers = 20, 4
	var advances atomic.Int64
	for i := range periods {
		now := periodicBase.Add(time.Duration(i) * time.Hour)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range racers {
			wg.Go(func() {
				<-start
				err := drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
					rows, err := tx.PeriodicDue(ctx, storage.PeriodicDueParams{Names: []string{"s"}, Now: now})
					if err != nil || len(rows) == 0 {
						return err
					}
					_, ok, err := tx.PeriodicAdvance(ctx, storage.PeriodicAdvanceParams{Name: "s", From: rows[0].NextRunAt, NextRunAt: now.Add(time.Hour)})
					if ok {
						advances.Add(1)
					}
					return err
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
	}
	if got := advances.Load(); got != periods {
		t.Fatalf("%d advances for %d periods", got, periods)
	}
}
