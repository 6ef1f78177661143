package queue_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
)

// clock is a time source the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// periodicClient is an insert-only client with periodic jobs on clk.
func periodicClient(t *testing.T, drv storage.Driver, clk *clock, jobs ...queue.PeriodicJob) *queue.Client {
	t.Helper()
	return newClient(t, drv, queue.Config{Now: clk.Now, Periodic: jobs, Logger: quietLogger()})
}

// pass runs one periodic pass and fails the test on an error.
func pass(ctx context.Context, t *testing.T, c *queue.Client) queue.PeriodicResult {
	t.Helper()
	res, err := c.EnqueuePeriodic(ctx)
	if err != nil {
		t.Fatalf("EnqueuePeriodic: %v", err)
	}
	return res
}

// periodKey is the unique key of a period's job.
func periodKey(name string, at time.Time) []byte {
	sum := sha256.Sum256([]byte(queue.Period{Name: name, At: at}.Key()))
	return sum[:]
}

// jobsOfKind lists the jobs of one kind, by id.
func jobsOfKind(ctx context.Context, t *testing.T, drv storage.Driver, kind string) []*acidic.Job {
	t.Helper()
	jobs, err := drv.JobList(ctx, acidic.JobFilter{Kind: kind, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

// wantPeriodJobs checks that the jobs of kind are exactly one per period
// in ats, in order.
func wantPeriodJobs(ctx context.Context, t *testing.T, drv storage.Driver, name, kind string, ats ...time.Time) {
	t.Helper()
	jobs := jobsOfKind(ctx, t, drv, kind)
	if len(jobs) != len(ats) {
		t.Fatalf("%d jobs of kind %s, want %d (one per period %v)", len(jobs), kind, len(ats), ats)
	}
	for i, j := range jobs {
		if !bytes.Equal(j.UniqueKey, periodKey(name, ats[i])) {
			t.Fatalf("job %d (the %d-th) is not the job of period %s", j.ID, i+1, ats[i])
		}
	}
}

func schedule(ctx context.Context, t *testing.T, drv storage.Driver, name string) *acidic.Periodic {
	t.Helper()
	rows, err := drv.PeriodicList(ctx, storage.PeriodicListParams{Names: []string{name}})
	if err != nil || len(rows) != 1 {
		t.Fatalf("PeriodicList(%s) = %d rows, %v", name, len(rows), err)
	}
	return rows[0]
}

// TestPeriodicJobOncePerPeriodAcrossThreeClients: three clients on one
// schema race their periodic passes, several each, at every period of a
// minutely schedule: each period makes exactly one job, reported enqueued
// by exactly one pass, and no pass fails.
func TestPeriodicJobOncePerPeriodAcrossThreeClients(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	drv := testdb.New(t, testdb.Options{MaxConns: 12})
	start := time.Date(2030, 1, 1, 0, 0, 30, 0, time.UTC)
	clk := newClock(start)
	job := queue.PeriodicJob{Name: "tick", Spec: "* * * * *", Kind: "tick", Args: map[string]int{"n": 1}}
	clients := []*queue.Client{periodicClient(t, drv, clk, job), periodicClient(t, drv, clk, job), periodicClient(t, drv, clk, job)}

	race := func() (enqueued []queue.Period) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for _, c := range clients {
			for range 3 {
				wg.Go(func() {
					<-gate
					res, err := c.EnqueuePeriodic(ctx)
					if err != nil {
						t.Errorf("EnqueuePeriodic: %v", err)
					}
					for i, p := range res.Enqueued {
						if res.Jobs[i] == nil || res.Jobs[i].Duplicate {
							t.Errorf("period %s: job %+v, want a new job", p.At, res.Jobs[i])
						}
					}
					mu.Lock()
					enqueued = append(enqueued, res.Enqueued...)
					mu.Unlock()
				})
			}
		}
		close(gate)
		wg.Wait()
		return enqueued
	}
	if got := race(); len(got) != 0 {
		t.Fatalf("registration passes enqueued %v; the first period is 00:01", got)
	}
	if s := schedule(ctx, t, drv, "tick"); !s.NextRunAt.Equal(start.Truncate(time.Minute).Add(time.Minute)) {
		t.Fatalf("registered next run %s, want 00:01", s.NextRunAt)
	}
	var periods []time.Time
	for i := 1; i <= 15; i++ {
		at := start.Truncate(time.Minute).Add(time.Duration(i) * time.Minute)
		clk.Set(at.Add(time.Duration(i) * time.Second)) // up to 15 s late: on time
		got := race()
		if len(got) != 1 || !got[0].At.Equal(at) || got[0].Missed != 0 {
			t.Fatalf("period %s: passes enqueued %v, want that period once", at, got)
		}
		periods = append(periods, at)
	}
	wantPeriodJobs(ctx, t, drv, "tick", "tick", periods...)
	s := schedule(ctx, t, drv, "tick")
	if last := periods[len(periods)-1]; s.LastRunAt == nil || !s.LastRunAt.Equal(last) || !s.NextRunAt.Equal(last.Add(time.Minute)) {
		t.Fatalf("schedule after the passes: last %v next %s, want last %s", s.LastRunAt, s.NextRunAt, last)
	}
}

// TestPeriodicJobFiresFromStartedClients: three started clients with an
// @every 1s schedule enqueue its periods on their own, on the real clock:
// every period from the first to the last is enqueued once, in a job of its
// own or in one that stands for it (a pass that came late).
func TestPeriodicJobFiresFromStartedClients(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{MaxConns: 12}, func(t *testing.T, drv storage.Driver) {
		createPeriods(t, drv)
		job := queue.PeriodicJob{Name: "tick", Spec: "@every 1s", Kind: "tick", EnqueueFunc: recordPeriod(drv, 0)}
		for range 3 {
			start(t, newClient(t, drv, queue.Config{Periodic: []queue.PeriodicJob{job}, Logger: quietLogger()}))
		}
		deadline := time.Now().Add(30 * time.Second)
		for countRows(t, drv, "periods") < 4 {
			if time.Now().After(deadline) {
				t.Fatalf("%d periods enqueued in 30 s", countRows(t, drv, "periods"))
			}
			time.Sleep(50 * time.Millisecond)
		}
		checkPeriods(t, drv, time.Second)
	})
}

// createPeriods makes the table recordPeriod writes to. It has no key, so
// a period recorded twice shows. Periods are kept as microseconds since
// the epoch, which both drivers' SQL can hold the same way.
func createPeriods(t *testing.T, drv storage.Driver) {
	execSQL(t, drv, "CREATE TABLE "+table(drv, "periods")+" (at bigint NOT NULL, missed int NOT NULL, pid int NOT NULL)")
}

// recordPeriod is an EnqueueFunc that records the period in the pass's
// transaction.
func recordPeriod(drv storage.Driver, pid int) func(context.Context, storage.Tx, queue.Period) error {
	return func(ctx context.Context, tx storage.Tx, p queue.Period) error {
		return testdb.TxExec(ctx, tx, "INSERT INTO "+table(drv, "periods")+" (at, missed, pid) VALUES ($1, $2, $3)", p.At.UnixMicro(), p.Missed, pid)
	}
}

// checkPeriods checks the recorded periods of an @every schedule: none
// twice, and none lost: each follows the one before by its own missed
// periods plus one.
func checkPeriods(t *testing.T, drv storage.Driver, every time.Duration) {
	t.Helper()
	type rec struct {
		at     time.Time
		missed int
	}
	var recs []rec
	n := countRows(t, drv, "periods")
	for i := range n {
		q := "SELECT %s FROM " + table(drv, "periods") + " ORDER BY at, missed LIMIT 1 OFFSET $1"
		at := testdb.QueryInt(t, drv, fmt.Sprintf(q, "at"), i)
		missed := testdb.QueryInt(t, drv, fmt.Sprintf(q, "missed"), i)
		recs = append(recs, rec{time.UnixMicro(int64(at)), missed})
	}
	for i := 1; i < len(recs); i++ {
		if want := recs[i-1].at.Add(time.Duration(recs[i].missed+1) * every); !recs[i].at.Equal(want) {
			t.Fatalf("period %s (standing for %d missed) follows %s: want %s; periods %v", recs[i].at, recs[i].missed, recs[i-1].at, want, recs)
		}
	}
}

// TestPeriodicJobOncePerPeriodAcrossProcesses: three processes run the
// periodic pass of one @every 1s schedule on their own clocks; every period
// is recorded once (or stood for by a later one), never twice.
func TestPeriodicJobOncePerPeriodAcrossProcesses(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: the worker processes (workerProcess) connect to PostgreSQL; SQLite's processes are tested in storage/sqlite.
	drv := testdb.New(t, testdb.Options{})
	createPeriods(t, drv)
	for range 3 {
		startWorkerProcess(t, drv.Schema(), "periodic", 1)
	}
	deadline := time.Now().Add(60 * time.Second)
	for countRows(t, drv, "periods") < 6 {
		if time.Now().After(deadline) {
			t.Fatalf("%d periods recorded in 60 s", countRows(t, drv, "periods"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	checkPeriods(t, drv, time.Second)
}

// TestPeriodicJobAfterARestartThatSpannedAPeriod: the next run is stored,
// so a client started after a period passed unseen finds it: MissedRunOnce
// enqueues one job now (one for several missed periods), MissedSkip
// enqueues none and waits for the next period, unless the period is still
// within MissedAfter.
func TestPeriodicJobAfterARestartThatSpannedAPeriod(t *testing.T) {
	t.Parallel()
	hour := func(h, m, s int) time.Time { return time.Date(2030, 6, 1, h, m, s, 0, time.UTC) }
	cases := []struct {
		name     string
		policy   acidic.MissedPolicy
		restart  time.Time   // when the second client runs its first pass
		enqueued []time.Time // periods that pass enqueues
		missed   int         // Missed of the period it enqueues
		skipped  bool
	}{
		{"run once, one period 30 minutes late", acidic.MissedRunOnce, hour(11, 30, 0), []time.Time{hour(11, 0, 0)}, 0, false},
		{"run once, three periods missed", acidic.MissedRunOnce, hour(13, 30, 0), []time.Time{hour(13, 0, 0)}, 2, false},
		{"skip, one period 30 minutes late", acidic.MissedSkip, hour(11, 30, 0), nil, 0, true},
		{"skip, three periods missed", acidic.MissedSkip, hour(13, 30, 0), nil, 0, true},
		{"skip, a period within MissedAfter", acidic.MissedSkip, hour(11, 0, 20), []time.Time{hour(11, 0, 0)}, 0, false},
		{"skip, two periods missed, the latest within MissedAfter", acidic.MissedSkip, hour(12, 0, 20), []time.Time{hour(12, 0, 0)}, 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			drv := testdb.New(t, testdb.Options{MaxConns: 4})
			job := queue.PeriodicJob{Name: "hourly", Spec: "0 * * * *", Kind: "report", Missed: tc.policy}
			clk := newClock(hour(10, 59, 0))
			// The first node registers the schedule, then dies before 11:00.
			if res := pass(ctx, t, periodicClient(t, drv, clk, job)); len(res.Enqueued) != 0 || !res.NextRunAt.Equal(hour(11, 0, 0)) {
				t.Fatalf("first pass: %+v, want nothing enqueued and 11:00 next", res)
			}
			clk.Set(tc.restart)
			res := pass(ctx, t, periodicClient(t, drv, clk, job))
			var ats []time.Time
			for _, p := range res.Enqueued {
				ats = append(ats, p.At)
				if p.Missed != tc.missed {
					t.Errorf("period %s stands for %d missed periods, want %d", p.At, p.Missed, tc.missed)
				}
			}
			if !slices.EqualFunc(ats, tc.enqueued, time.Time.Equal) {
				t.Fatalf("after the restart the pass enqueued %v, want %v", ats, tc.enqueued)
			}
			if tc.skipped != (len(res.Skipped) == 1) {
				t.Fatalf("skipped %v, want skipped %v", res.Skipped, tc.skipped)
			}
			next := tc.restart.Truncate(time.Hour).Add(time.Hour)
			if !res.NextRunAt.Equal(next) {
				t.Fatalf("next run after the restart %s, want %s", res.NextRunAt, next)
			}
			wantPeriodJobs(ctx, t, drv, "hourly", "report", tc.enqueued...)
			// The schedule goes on at its next period, once.
			clk.Set(next.Add(5 * time.Second))
			c := periodicClient(t, drv, clk, job)
			pass(ctx, t, c)
			pass(ctx, t, c)
			wantPeriodJobs(ctx, t, drv, "hourly", "report", append(tc.enqueued, next)...)
		})
	}
}

// TestPeriodicJobTimeZone: a schedule is read in its time zone, also
// across a daylight saving change: 09:00 in New York is 14:00 UTC before
// 10 March 2030 and 13:00 UTC after; a CRON_TZ= prefix works as TimeZone
// does, and the zone is stored apart from the spec.
func TestPeriodicJobTimeZone(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	cases := []struct {
		name, spec, tz string
		start          time.Time
		want           []time.Time
		storedTZ       string
	}{
		{"TimeZone, spring forward", "0 9 * * *", "America/New_York", time.Date(2030, 3, 8, 0, 0, 0, 0, time.UTC), []time.Time{
			time.Date(2030, 3, 8, 14, 0, 0, 0, time.UTC), time.Date(2030, 3, 9, 14, 0, 0, 0, time.UTC),
			time.Date(2030, 3, 10, 13, 0, 0, 0, time.UTC), time.Date(2030, 3, 11, 13, 0, 0, 0, time.UTC),
		}, "America/New_York"},
		{"CRON_TZ prefix, fall back", "CRON_TZ=Europe/Paris 30 8 * * *", "", time.Date(2030, 10, 25, 12, 0, 0, 0, time.UTC), []time.Time{
			time.Date(2030, 10, 26, 6, 30, 0, 0, time.UTC), time.Date(2030, 10, 27, 7, 30, 0, 0, time.UTC),
			time.Date(2030, 10, 28, 7, 30, 0, 0, time.UTC),
		}, "Europe/Paris"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			drv := testdb.New(t, testdb.Options{MaxConns: 4})
			clk := newClock(tc.start)
			c := periodicClient(t, drv, clk, queue.PeriodicJob{Name: "morning", Spec: tc.spec, TimeZone: tc.tz, Kind: "report"})
			res := pass(ctx, t, c)
			var got []time.Time
			for range tc.want {
				clk.Set(res.NextRunAt.Add(time.Second))
				res = pass(ctx, t, c)
				if len(res.Enqueued) != 1 {
					t.Fatalf("pass at %s enqueued %v, want one period", clk.Now(), res.Enqueued)
				}
				got = append(got, res.Enqueued[0].At)
			}
			if !slices.EqualFunc(got, tc.want, time.Time.Equal) {
				t.Fatalf("periods %v, want %v", got, tc.want)
			}
			loc := map[string]*time.Location{"America/New_York": ny, "Europe/Paris": paris}[tc.storedTZ]
			for _, at := range got {
				if at.Location().String() != tc.storedTZ || at.In(loc).Format("15:04") != tc.want[0].In(loc).Format("15:04") {
					t.Fatalf("period %s is not at the same wall-clock time in %s as %s", at, tc.storedTZ, tc.want[0])
				}
			}
			s := schedule(ctx, t, drv, "morning")
			if s.TimeZone != tc.storedTZ || s.Spec != "0 9 * * *" && s.Spec != "30 8 * * *" {
				t.Fatalf("stored spec %q zone %q, want the expression without its prefix and zone %q", s.Spec, s.TimeZone, tc.storedTZ)
			}
		})
	}
}

// TestPeriodicJobBadInput: a malformed cron expression, an unknown time
// zone, a name registered twice, an empty kind and other bad options get
// typed errors at registration (New or AddPeriodic), and nothing is written:
// no schedule, no job, even when the client then runs a pass.
func TestPeriodicJobBadInput(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	drv := testdb.New(t, testdb.Options{MaxConns: 4})
	clk := newClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	good := queue.PeriodicJob{Name: "good", Spec: "@hourly", Kind: "report"}
	mod := func(f func(*queue.PeriodicJob)) queue.PeriodicJob {
		j := good
		f(&j)
		return j
	}
	cases := []struct {
		name string
		jobs []queue.PeriodicJob
		want error
	}{
		{"malformed expression", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.Spec = "61 * * * *" })}, queue.ErrInvalidSpec},
		{"four fields", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.Spec = "* * * *" })}, queue.ErrInvalidSpec},
		{"seconds field", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.Spec = "0 * * * * *" })}, queue.ErrInvalidSpec},
		{"empty expression", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.Spec = " " })}, queue.ErrInvalidSpec},
		{"unknown descriptor", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.Spec = "@fortnightly" })}, queue.ErrInvalidSpec},
		{"never fires", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.Spec = "0 0 30 2 *" })}, queue.ErrInvalidSpec},
		{"every below a second", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.Spec = "@every 500ms" })}, queue.ErrInvalidSpec},
		{"every with a fraction", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.Spec = "@every 1.5s" })}, queue.ErrInvalidSpec},
		{"every negative", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.Spec = "@every -1m" })}, queue.ErrInvalidSpec},
		{"prefix without expression", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.Spec = "TZ=UTC" })}, queue.ErrInvalidSpec},
		{"prefix and another TimeZone", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.Spec, j.TimeZone = "CRON_TZ=Europe/Paris @daily", "UTC" })}, queue.ErrInvalidSpec},
		{"unknown time zone", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.TimeZone = "Mars/Olympus_Mons" })}, queue.ErrUnknownTimeZone},
		{"unknown time zone in the prefix", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.Spec = "CRON_TZ=Nowhere/Town @daily" })}, queue.ErrUnknownTimeZone},
		{"Local time zone", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.TimeZone = "Local" })}, queue.ErrUnknownTimeZone},
		{"time zone path", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.TimeZone = "../../etc/passwd" })}, queue.ErrUnknownTimeZone},
		{"duplicate name", []queue.PeriodicJob{good, mod(func(j *queue.PeriodicJob) { j.Spec = "@daily" })}, queue.ErrDuplicatePeriodic},
		{"empty kind", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.Kind = "" })}, queue.ErrInvalid},
		{"empty name", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.Name = "" })}, queue.ErrInvalid},
		{"unknown policy", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.Missed = "sometimes" })}, queue.ErrInvalid},
		{"negative MissedAfter", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.MissedAfter = -time.Second })}, queue.ErrInvalid},
		{"Unique", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.Opts.Unique = &queue.UniqueOptions{} })}, queue.ErrInvalid},
		{"ScheduledAt", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.Opts.ScheduledAt = time.Now() })}, queue.ErrInvalid},
		{"args not JSON", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.Args = func() {} })}, queue.ErrInvalid},
		{"priority out of range", []queue.PeriodicJob{mod(func(j *queue.PeriodicJob) { j.Opts.Priority = queue.PriorityOf(9) })}, queue.ErrInvalid},
	}
	for _, tc := range cases {
		_, err := queue.New(drv, queue.Config{Now: clk.Now, Periodic: tc.jobs, Logger: quietLogger()})
		if !errors.Is(err, tc.want) || !errors.Is(err, queue.ErrInvalid) && tc.want != queue.ErrDuplicatePeriodic {
			t.Errorf("%s: New = %v, want %v", tc.name, err, tc.want)
		}
		// AddPeriodic refuses the same, and registers none of the jobs
		// given with a bad one.
		c := periodicClient(t, drv, clk)
		err = c.AddPeriodic(append([]queue.PeriodicJob{{Name: "first-" + fmt.Sprint(len(tc.name)), Spec: "@hourly", Kind: "report"}}, tc.jobs...)...)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: AddPeriodic = %v, want %v", tc.name, err, tc.want)
		}
		if res := pass(ctx, t, c); !res.NextRunAt.IsZero() || len(res.Enqueued) != 0 {
			t.Errorf("%s: a pass after the refused registration: %+v", tc.name, res)
		}
	}
	// A name given again to AddPeriodic after it was registered.
	c := periodicClient(t, drv, clk)
	if err := c.AddPeriodic(queue.PeriodicJob{Name: "again", Spec: "@hourly", Kind: "report"}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddPeriodic(queue.PeriodicJob{Name: "again", Spec: "@daily", Kind: "report"}); !errors.Is(err, queue.ErrDuplicatePeriodic) {
		t.Errorf("AddPeriodic of a registered name = %v, want ErrDuplicatePeriodic", err)
	}
	if n := countRows(t, drv, "periodic_schedules"); n != 0 {
		t.Fatalf("refused registrations wrote %d schedules", n)
	}
	if n := countRows(t, drv, "jobs"); n != 0 {
		t.Fatalf("refused registrations wrote %d jobs", n)
	}
	// After Start, AddPeriodic is refused.
	start(t, c)
	if err := c.AddPeriodic(good); !errors.Is(err, queue.ErrAlreadyStarted) {
		t.Errorf("AddPeriodic after Start = %v, want ErrAlreadyStarted", err)
	}
}

// TestPeriodicJobEnqueueFuncErrorLeavesThePeriodDue: when a period's
// enqueue fails, its transaction rolls back: the schedule does not move on
// and the next pass enqueues the period; other schedules go on meanwhile.
func TestPeriodicJobEnqueueFuncErrorLeavesThePeriodDue(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	drv := testdb.New(t, testdb.Options{MaxConns: 4})
	createPeriods(t, drv)
	clk := newClock(time.Date(2030, 1, 1, 0, 0, 30, 0, time.UTC))
	fail := true
	record := recordPeriod(drv, 1)
	flaky := queue.PeriodicJob{Name: "flaky", Spec: "* * * * *", Kind: "report", EnqueueFunc: func(ctx context.Context, tx storage.Tx, p queue.Period) error {
		if err := record(ctx, tx, p); err != nil {
			return err
		}
		if fail {
			return errors.New("boom")
		}
		return nil
	}}
	c := periodicClient(t, drv, clk, flaky, queue.PeriodicJob{Name: "steady", Spec: "* * * * *", Kind: "report"})
	pass(ctx, t, c)
	clk.Set(time.Date(2030, 1, 1, 0, 1, 10, 0, time.UTC))
	res, err := c.EnqueuePeriodic(ctx)
	if err == nil || len(res.Enqueued) != 1 || res.Enqueued[0].Name != "steady" {
		t.Fatalf("pass with a failing enqueue: %+v, %v; want steady enqueued and the error", res, err)
	}
	if n := countRows(t, drv, "periods"); n != 0 {
		t.Fatalf("the failed enqueue's write was kept (%d rows)", n)
	}
	fail = false
	res = pass(ctx, t, c)
	if len(res.Enqueued) != 1 || res.Enqueued[0].Name != "flaky" || !res.Enqueued[0].At.Equal(time.Date(2030, 1, 1, 0, 1, 0, 0, time.UTC)) {
		t.Fatalf("next pass enqueued %+v, want flaky's 00:01 period", res.Enqueued)
	}
}

// periodicProcess is a process of TestPeriodicJobOncePerPeriodAcrossProcesses:
// a client that records each period of an @every 1s schedule it enqueues,
// until it is stopped.
func periodicProcess(ctx context.Context, drv *postgres.Driver) int {
	job := queue.PeriodicJob{Name: "tick", Spec: "@every 1s", Kind: "tick", EnqueueFunc: recordPeriod(drv, os.Getpid())}
	c, err := queue.New(drv, queue.Config{Periodic: []queue.PeriodicJob{job}, Logger: quietLogger()})
	if err == nil {
		err = c.Start(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.Stop(stopCtx)
	return 0
}

// lostCommitDriver reports the first transaction's COMMIT as lost after it
// committed, as a connection that broke before the answer came would.
type lostCommitDriver struct {
	storage.Driver
	lost bool
}

func (d *lostCommitDriver) InTx(ctx context.Context, iso storage.Isolation, fn storage.TxFunc) error {
	if err := d.Driver.InTx(ctx, iso, fn); err != nil || d.lost {
		return err
	}
	d.lost = true
	return acidic.ErrCommitUnknown
}

// TestPeriodicJobLostCommitAnswer: a pass whose COMMIT answer was lost
// reports an error, and the next pass finds the period enqueued and the
// schedule moved on: the period has one job.
func TestPeriodicJobLostCommitAnswer(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	drv := testdb.New(t, testdb.Options{MaxConns: 4})
	clk := newClock(time.Date(2030, 1, 1, 0, 0, 30, 0, time.UTC))
	job := queue.PeriodicJob{Name: "tick", Spec: "* * * * *", Kind: "tick"}
	pass(ctx, t, periodicClient(t, drv, clk, job))
	at := time.Date(2030, 1, 1, 0, 1, 0, 0, time.UTC)
	clk.Set(at.Add(time.Second))
	c := periodicClient(t, &lostCommitDriver{Driver: drv}, clk, job)
	if _, err := c.EnqueuePeriodic(ctx); !errors.Is(err, acidic.ErrCommitUnknown) {
		t.Fatalf("pass with a lost COMMIT answer = %v, want ErrCommitUnknown", err)
	}
	if res := pass(ctx, t, c); len(res.Enqueued) != 0 || !res.NextRunAt.Equal(at.Add(time.Minute)) {
		t.Fatalf("pass after the lost answer: %+v, want nothing enqueued and the schedule at 00:02", res)
	}
	wantPeriodJobs(ctx, t, drv, "tick", "tick", at)
}
