package workflow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// The records a step wrote through its logger survive the worker process
// being killed right after the step committed; those of the step it was
// in the middle of (its transaction never committed) are gone, and the
// step's next attempt keeps only its own.
func TestStepLogsSurviveAKilledWorker(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: the worker process is reached by DATABASE_URL and schema (see startWorkflowWorker), and waitSessionsGone reads pg_stat_activity.
	drv := testdb.New(t, testdb.Options{})
	createEffects(t, drv)
	execSQL(t, drv, "CREATE TABLE "+table(drv, "markers")+" (run_id uuid NOT NULL, step text NOT NULL, pid int NOT NULL)")
	cfg := workflow.Config{
		Queue: queue.Config{
			Queues:              map[string]queue.QueueConfig{"default": {MaxWorkers: 2}},
			PollInterval:        20 * time.Millisecond,
			HeartbeatInterval:   50 * time.Millisecond,
			RescueAfter:         300 * time.Millisecond,
			MaintenanceInterval: 50 * time.Millisecond,
		},
		LockedRetry: 20 * time.Millisecond,
		Logger:      quietLogger(),
	}
	e := newEngine(t, drv, cfg, crashyWorkflow(drv, ""))
	id := enqueue(t, e, "crashy", crashyArgs{Order: "o-logs"})

	proc := startWorkflowWorker(t, drv.Schema(), "step2")
	waitFor(t, 30*time.Second, "the worker process to hang in step2", func() (bool, string) {
		return countRows(t, drv, "markers", "run_id = $1", id) == 1, "no marker yet"
	})
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = proc.Wait()
	waitSessionsGone(t, drv)

	// Read before any engine of this process touched the run: what the
	// killed worker left.
	r := getRun(t, e, id)
	s1 := stepLog(t, r, "step1")
	if len(s1.Logs) != 1 || s1.Logs[0].Message != "effect recorded" || s1.Logs[0].Attempt != 1 || s1.Logs[0].Level != "INFO" {
		t.Fatalf("step1 logs after the kill: %+v; want the one record of attempt 1", s1.Logs)
	}
	var attrs struct{ PID int }
	if err := json.Unmarshal(s1.Logs[0].Attrs, &attrs); err != nil || attrs.PID == os.Getpid() || attrs.PID == 0 {
		t.Fatalf("step1 record attrs %s (%v): want the killed worker's pid", s1.Logs[0].Attrs, err)
	}
	for _, s := range r.Steps {
		if s.Name != "step1" {
			t.Fatalf("after the kill the step log holds %s (%+v); want step1 only", s.Name, s)
		}
	}
	if n := countRows(t, drv, "run_step_logs", "run_id = $1 AND position = 1", id); n != 0 {
		t.Fatalf("step2 (rolled back by the kill) left %d log rows", n)
	}

	startEngine(t, e)
	r = waitRun(t, e, id, acidic.RunSucceeded, acidic.RunFailed, acidic.RunCancelled)
	if r.State != acidic.RunSucceeded {
		t.Fatalf("run %s (%s), want succeeded", r.State, r.Error)
	}
	s2 := stepLog(t, r, "step2")
	if len(s2.Logs) != 1 || s2.Logs[0].Attempt != 2 {
		t.Fatalf("step2 logs: %+v; want one record, of attempt 2", s2.Logs)
	}
	if s1 := stepLog(t, r, "step1"); len(s1.Logs) != 1 {
		t.Fatalf("step1 logs at the end: %+v; want its one record", s1.Logs)
	}
}

// recorder is a slog.Handler that keeps the messages it handles.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.msgs = append(h.msgs, b.String())
	return nil
}
func (h *recorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recorder) WithGroup(string) slog.Handler      { return h }

func (h *recorder) count(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

type logArgs struct{ N int }
type logState struct{ Tries int }

// A step that fails keeps no records of its failed try (its transaction
// rolled back); the try that commits keeps its own. Every record also
// reaches the engine's own handler, and each failed attempt is in the
// step's history with its error and timing.
func TestStepLogsOfAFailedTryAreGoneAndFailuresKept(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		rec := &recorder{}
		cfg := engineConfig(1)
		cfg.Logger = slog.New(rec)
		tries := &counter{}
		wf := workflow.Define("flaky-logs", fastOptions(5),
			steps.Do("charge", func(ctx context.Context, sc *steps.Context[logArgs, logState]) error {
				n := tries.inc("charge")
				sc.Logger().Info("calling the gateway", "try", n, slog.Group("req", "amount", 42))
				sc.Logger().Debug("debug records pass on but are not kept")
				if n < 3 {
					sc.Logger().Warn("gateway said no", "try", n)
					return fmt.Errorf("gateway: declined (try %d)", n)
				}
				return nil
			}))
		e := newEngine(t, drv, cfg, wf)
		id := enqueue(t, e, "flaky-logs", logArgs{})
		startEngine(t, e)
		r := waitSucceeded(t, e, id)
		s := stepLog(t, r, "charge")
		if len(s.Logs) != 1 || s.Logs[0].Attempt != 3 || s.Logs[0].Message != "calling the gateway" {
			t.Fatalf("logs %+v; want only the committed try's record (attempt 3)", s.Logs)
		}
		if got := string(s.Logs[0].Attrs); got != `{"try":3,"req":{"amount":42}}` {
			t.Errorf("attrs %s", got)
		}
		if s.LogsDropped != 0 {
			t.Errorf("LogsDropped %d", s.LogsDropped)
		}
		if n := rec.count("calling the gateway"); n != 3 {
			t.Errorf("engine handler saw %d records of the step, want 3 (one per try)", n)
		}
		if n := rec.count("debug records pass on"); n != 3 {
			t.Errorf("engine handler saw %d debug records, want 3", n)
		}
		if len(s.Failures) != 2 || s.FailuresDropped != 0 {
			t.Fatalf("failures %+v (%d dropped); want the 2 failed attempts", s.Failures, s.FailuresDropped)
		}
		for i, f := range s.Failures {
			if f.Attempt != i+1 || f.Error != fmt.Sprintf("gateway: declined (try %d)", i+1) || f.StartedAt.IsZero() || f.FailedAt.Before(f.StartedAt) {
				t.Errorf("failure %d: %+v", i, f)
			}
		}
	})
}

// A step that floods its logger keeps the first MaxStepLogRecords records
// over all its executions, and a marker of how many were dropped; a record
// of huge size is cut, and the byte cap holds.
func TestStepLogFloodIsCapped(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		cfg := engineConfig(1)
		cfg.Logger = quietLogger()
		big := strings.Repeat("x", 3*storage.MaxLogRecordBytes)
		wf := workflow.Define("flood", fastOptions(1),
			// Three executions (Repeat) of 60 records each: 100 kept, 80 dropped.
			steps.Do("repeat", func(ctx context.Context, sc *steps.Context[logArgs, logState]) error {
				sc.State.Tries++
				for i := 0; i < 60; i++ {
					sc.Logger().Info("line", "exec", sc.State.Tries, "i", i)
				}
				if sc.State.Tries < 3 {
					return steps.Repeat()
				}
				return nil
			}),
			// One execution of 100,000 records.
			steps.Do("flood", func(ctx context.Context, sc *steps.Context[logArgs, logState]) error {
				for i := 0; i < 100_000; i++ {
					sc.Logger().Info("flood", "i", i)
				}
				return nil
			}),
			// Records of cut size: the byte cap keeps a few.
			steps.Do("big", func(ctx context.Context, sc *steps.Context[logArgs, logState]) error {
				for i := 0; i < 50; i++ {
					sc.Logger().Info(big, "blob", big)
				}
				return nil
			}))
		e := newEngine(t, drv, cfg, wf)
		id := enqueue(t, e, "flood", logArgs{})
		startEngine(t, e)
		r := waitSucceeded(t, e, id)
		check := func(name string, kept, dropped int) acidic.Step {
			t.Helper()
			s := stepLog(t, r, name)
			if len(s.Logs) != kept+1 || s.LogsDropped != dropped {
				t.Fatalf("%s: %d records (%d dropped); want %d and the marker (%d dropped)", name, len(s.Logs), s.LogsDropped, kept, dropped)
			}
			m := s.Logs[len(s.Logs)-1]
			if m.Level != "WARN" || !strings.Contains(m.Message, fmt.Sprintf("%d more log records", dropped)) || string(m.Attrs) != fmt.Sprintf(`{"dropped":%d}`, dropped) {
				t.Fatalf("%s: marker %+v", name, m)
			}
			bytes := 0
			for _, l := range s.Logs[:kept] {
				bytes += storage.LogRecordSize(l)
			}
			if bytes > storage.MaxStepLogBytes {
				t.Fatalf("%s: %d bytes kept, over the cap %d", name, bytes, storage.MaxStepLogBytes)
			}
			return s
		}
		s := check("repeat", storage.MaxStepLogRecords, 3*60-storage.MaxStepLogRecords)
		if last := s.Logs[storage.MaxStepLogRecords-1]; string(last.Attrs) != `{"exec":2,"i":39}` {
			t.Errorf("repeat: the last record kept is %s; want the first 100 written", last.Attrs)
		}
		check("flood", storage.MaxStepLogRecords, 100_000-storage.MaxStepLogRecords)
		// Each big record is cut to its message's limit and a short note for
		// its attributes: {"!cut":<their length>}.
		size := storage.MaxLogRecordBytes + len(fmt.Sprintf(`{"!cut":%d}`, len(`{"blob":""}`)+len(big)))
		s = check("big", storage.MaxStepLogBytes/size, 50-storage.MaxStepLogBytes/size)
		if l := s.Logs[0]; len(l.Message) > storage.MaxLogRecordBytes || !strings.Contains(l.Message, "[cut:") || !bytes.HasPrefix(l.Attrs, []byte(`{"!cut":`)) {
			t.Errorf("big record: message %d bytes, attrs %s; want both cut", len(l.Message), l.Attrs)
		}
	})
}

// Every failed attempt of a step is kept, up to MaxStepFailures: the
// latest, oldest first, and the count of those forgotten.
func TestStepFailureHistoryIsCapped(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		cfg := engineConfig(1)
		cfg.Logger = quietLogger()
		const fails = storage.MaxStepFailures + 5
		wf := workflow.Define("stubborn", fastOptions(fails+1),
			steps.Do("try", func(ctx context.Context, sc *steps.Context[logArgs, logState]) error {
				if sc.Attempt() <= fails {
					return errors.New("no luck on attempt " + fmt.Sprint(sc.Attempt()))
				}
				return nil
			}))
		e := newEngine(t, drv, cfg, wf)
		id := enqueue(t, e, "stubborn", logArgs{})
		startEngine(t, e)
		r := waitSucceeded(t, e, id)
		s := stepLog(t, r, "try")
		if len(s.Failures) != storage.MaxStepFailures || s.FailuresDropped != fails-storage.MaxStepFailures {
			t.Fatalf("%d failures kept, %d dropped; want %d and %d", len(s.Failures), s.FailuresDropped, storage.MaxStepFailures, fails-storage.MaxStepFailures)
		}
		for i, f := range s.Failures {
			want := fails - storage.MaxStepFailures + i + 1
			if f.Attempt != want || f.Error != fmt.Sprintf("no luck on attempt %d", want) {
				t.Errorf("failure %d: attempt %d %q; want attempt %d", i, f.Attempt, f.Error, want)
			}
		}
		if s.State != acidic.StepSucceeded || s.Error != "" {
			t.Errorf("step %s %q; want succeeded", s.State, s.Error)
		}
	})
}
