package storagetest

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

func testRunRelease(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()

	t.Run("wrong token", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		drv := newDriver(t)
		r := progressedRun(ctx, t, drv, "k", "a")
		before := getRun(ctx, t, drv, r.ID)
		stepsBefore := runSteps(ctx, t, drv, r.ID)
		started := time.Now().Truncate(time.Microsecond)

		for _, rr := range []storage.RunReleaseParams{
			// Another holder's token, logging the existing position and a new one.
			{ID: r.ID, Token: "b", State: acidic.RunFailed, Error: "hijack",
				Step: &acidic.Step{Position: 0, Name: "step1", State: acidic.StepFailed, Attempt: 2, Error: "hijack", StartedAt: started}},
			{ID: r.ID, Token: "b", State: acidic.RunPending, Error: "hijack",
				Step: &acidic.Step{Position: 1, Name: "step2", State: acidic.StepFailed, Attempt: 1, Error: "hijack", StartedAt: started}},
			// No token at all.
			{ID: r.ID, Token: "", State: acidic.RunCancelled,
				Step: &acidic.Step{Position: 1, Name: "step2", State: acidic.StepFailed, Attempt: 1, StartedAt: started}},
		} {
			got, err := drv.RunRelease(ctx, rr)
			if !errors.Is(err, acidic.ErrLeaseLost) {
				t.Errorf("RunRelease with token %q: run %+v, err = %v; want ErrLeaseLost", rr.Token, got, err)
			}
			if got != nil {
				t.Errorf("RunRelease with token %q returned run %+v, want nil", rr.Token, got)
			}
		}
		if after := getRun(ctx, t, drv, r.ID); !reflect.DeepEqual(after, before) {
			t.Errorf("RunRelease with a wrong token changed the run:\n got %+v\nwant %+v", after, before)
		}
		if after := runSteps(ctx, t, drv, r.ID); !reflect.DeepEqual(after, stepsBefore) {
			t.Errorf("RunRelease with a wrong token wrote the step log:\n got %+v\nwant %+v", after, stepsBefore)
		}

		// A run nobody leased, and a run that does not exist.
		free := insertRun(ctx, t, drv, "free")
		if _, err := drv.RunRelease(ctx, storage.RunReleaseParams{ID: free.ID, Token: "a", State: acidic.RunFailed,
			Step: &acidic.Step{Position: 0, Name: "step1", State: acidic.StepFailed, Attempt: 1, StartedAt: started}}); !errors.Is(err, acidic.ErrLeaseLost) {
			t.Errorf("RunRelease of an unleased run: err = %v, want ErrLeaseLost", err)
		}
		if after := getRun(ctx, t, drv, free.ID); !reflect.DeepEqual(after, free) {
			t.Errorf("RunRelease of an unleased run changed it:\n got %+v\nwant %+v", after, free)
		}
		if steps := runSteps(ctx, t, drv, free.ID); len(steps) != 0 {
			t.Errorf("RunRelease of an unleased run logged steps %+v", steps)
		}
		if _, err := drv.RunRelease(ctx, storage.RunReleaseParams{ID: uuid.New(), Token: "a", State: acidic.RunFailed}); !errors.Is(err, acidic.ErrLeaseLost) {
			t.Errorf("RunRelease of an unknown run: err = %v, want ErrLeaseLost", err)
		}
	})

	t.Run("right token", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		drv := newDriver(t)
		r := progressedRun(ctx, t, drv, "k", "a")
		if r.RecoveryPoint != "step2" || r.Cursor != 42 || !jsonEqual(t, r.Attrs, []byte(`{"progress":7}`)) || r.LockedBy != "a" {
			t.Fatalf("set-up: run = %+v, want progress moved and leased by a", r)
		}

		started := time.Now().Add(-time.Second).Truncate(time.Microsecond)
		got := releaseRun(ctx, t, drv, storage.RunReleaseParams{ID: r.ID, Token: "a", State: acidic.RunPending, Error: "boom",
			Step: &acidic.Step{Position: 1, Name: "step2", State: acidic.StepFailed, Attempt: 1, Error: "boom", StartedAt: started}})
		wantReleased(t, got, r, acidic.RunPending, "boom")
		if stored := getRun(ctx, t, drv, r.ID); !reflect.DeepEqual(stored, got) {
			t.Errorf("RunGet = %+v, want the released run %+v", stored, got)
		}
		steps := runSteps(ctx, t, drv, r.ID)
		if len(steps) != 2 {
			t.Fatalf("RunSteps = %+v, want 2 steps", steps)
		}
		if s := steps[0]; s.Name != "step1" || s.State != acidic.StepSucceeded || s.Executions != 1 {
			t.Errorf("earlier step = %+v, want step1 succeeded once, untouched", s)
		}
		s := steps[1]
		if s.RunID != r.ID || s.Position != 1 || s.Name != "step2" || s.State != acidic.StepFailed || s.Attempt != 1 ||
			s.Executions != 1 || s.Error != "boom" || s.Result != nil || !s.StartedAt.Equal(started) || s.FinishedAt.Before(started) {
			t.Errorf("logged step = %+v, want step2 at 1 failed with boom, attempt 1, 1 execution, no result, started %v", s, started)
		}

		// The released holder is fenced out.
		if _, err := drv.RunRelease(ctx, storage.RunReleaseParams{ID: r.ID, Token: "a", State: acidic.RunFailed, Error: "late"}); !errors.Is(err, acidic.ErrLeaseLost) {
			t.Errorf("second RunRelease by the released holder: err = %v, want ErrLeaseLost", err)
		}
		if stored := getRun(ctx, t, drv, r.ID); !reflect.DeepEqual(stored, got) {
			t.Errorf("a fenced-out RunRelease changed the run:\n got %+v\nwant %+v", stored, got)
		}

		// Leased again, released again at the same position: another execution.
		relet, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "c", Job: runningJob(ctx, t, drv, r.ID)})
		if !ok {
			t.Fatalf("re-lease of the released run refused: %+v", relet)
		}
		started2 := time.Now().Truncate(time.Microsecond)
		again := releaseRun(ctx, t, drv, storage.RunReleaseParams{ID: r.ID, Token: "c", State: acidic.RunPending, Error: "boom again",
			Step: &acidic.Step{Position: 1, Name: "step2", State: acidic.StepFailed, Attempt: 2, Error: "boom again", StartedAt: started2}})
		wantReleased(t, again, relet, acidic.RunPending, "boom again")
		steps = runSteps(ctx, t, drv, r.ID)
		if len(steps) != 2 {
			t.Fatalf("RunSteps = %+v, want 2 steps", steps)
		}
		if s := steps[1]; s.Position != 1 || s.Name != "step2" || s.State != acidic.StepFailed || s.Attempt != 2 ||
			s.Executions != 2 || s.Error != "boom again" || s.FinishedAt.Before(started2) {
			t.Errorf("re-logged step = %+v, want failed, attempt 2, 2 executions, error %q", s, "boom again")
		}

		// No step leaves the log alone.
		if _, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "d", Job: runningJob(ctx, t, drv, r.ID)}); !ok {
			t.Fatal("third lease refused")
		}
		stepsBefore := runSteps(ctx, t, drv, r.ID)
		releaseRun(ctx, t, drv, storage.RunReleaseParams{ID: r.ID, Token: "d", State: acidic.RunPending})
		if after := runSteps(ctx, t, drv, r.ID); !reflect.DeepEqual(after, stepsBefore) {
			t.Errorf("RunRelease without a step changed the log:\n got %+v\nwant %+v", after, stepsBefore)
		}
		if stored := getRun(ctx, t, drv, r.ID); stored.Error != "" || stored.State != acidic.RunPending {
			t.Errorf("release without error: state %s, error %q; want pending, no error", stored.State, stored.Error)
		}
	})

	t.Run("succeeded step is kept", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		drv := newDriver(t)
		// The step at position 0 committed (progressedRun logged it
		// succeeded); a failure recorded for it afterwards (its commit's
		// outcome was lost, say) must not overwrite it.
		r := progressedRun(ctx, t, drv, "k", "a")
		stepsBefore := runSteps(ctx, t, drv, r.ID)
		if len(stepsBefore) != 1 || stepsBefore[0].State != acidic.StepSucceeded {
			t.Fatalf("set-up: steps = %+v, want one succeeded step", stepsBefore)
		}

		got := releaseRun(ctx, t, drv, storage.RunReleaseParams{ID: r.ID, Token: "a", State: acidic.RunPending, Error: "commit lost",
			Step: &acidic.Step{Position: 0, Name: "step1", State: acidic.StepFailed, Attempt: 2, Error: "commit lost",
				StartedAt: time.Now().Truncate(time.Microsecond)}})
		// The run is still given up.
		wantReleased(t, got, r, acidic.RunPending, "commit lost")
		after := runSteps(ctx, t, drv, r.ID)
		if !reflect.DeepEqual(after, stepsBefore) {
			t.Errorf("RunRelease overwrote a succeeded step:\n got %+v\nwant %+v", after, stepsBefore)
		}
		if len(after) == 1 {
			if s := after[0]; s.State != acidic.StepSucceeded || s.Executions != 1 || s.Error != "" || s.Attempt != 1 ||
				!jsonEqual(t, s.Result, []byte(`{"one":1}`)) {
				t.Errorf("succeeded step = %+v, want it as committed", s)
			}
		}
	})

	t.Run("final states", func(t *testing.T) {
		t.Parallel()
		for _, state := range []acidic.RunState{acidic.RunFailed, acidic.RunCancelled, acidic.RunSucceeded, acidic.RunPending} {
			t.Run(string(state), func(t *testing.T) {
				t.Parallel()
				ctx := testCtx(t)
				drv := newDriver(t)
				r := progressedRun(ctx, t, drv, "k", "a")
				before := time.Now()
				got := releaseRun(ctx, t, drv, storage.RunReleaseParams{ID: r.ID, Token: "a", State: state, Error: "the end",
					Step: &acidic.Step{Position: 1, Name: "step2", State: acidic.StepFailed, Attempt: 1, Error: "the end",
						StartedAt: before.Truncate(time.Microsecond)}})
				wantReleased(t, got, r, state, "the end")
				if state.Final() && (got.FinishedAt == nil || !near(*got.FinishedAt, before, time.Minute)) {
					t.Errorf("final release to %s: finished at %v, want about %v", state, got.FinishedAt, before)
				}
				if stored := getRun(ctx, t, drv, r.ID); !reflect.DeepEqual(stored, got) {
					t.Errorf("RunGet = %+v, want %+v", stored, got)
				}
				if state.Final() {
					// A finished run is not leased again.
					if relet, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "b", Job: runningJob(ctx, t, drv, r.ID)}); ok {
						t.Errorf("lease of a %s run taken: %+v", state, relet)
					}
				}
			})
		}
	})
}

func testRunChildFinished(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()

	t.Run("sequential", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		drv := newDriver(t)
		parent := awaitingParent(ctx, t, drv, "parent", 3)
		// Another parent awaiting at a step of the same name: untouched.
		other := awaitingParent(ctx, t, drv, "other", 1)
		otherSteps := runSteps(ctx, t, drv, other.ID)

		prev := parent
		for i, want := range []int{2, 1} {
			got, counted, err := drv.RunChildFinished(ctx, storage.RunChildFinishedParams{ChildID: newChild(ctx, t, drv, parent.ID, "fanout")})
			if err != nil {
				t.Fatalf("RunChildFinished #%d: %v", i+1, err)
			}
			if got == nil {
				t.Fatalf("RunChildFinished #%d returned no run", i+1)
			}
			// The bool says the child was counted off (the parent was
			// awaiting); only the state says whether it resumed.
			if !counted {
				t.Errorf("RunChildFinished #%d on an awaiting parent reported false", i+1)
			}
			if got.State != acidic.RunAwaiting || got.Awaiting != want {
				t.Errorf("RunChildFinished #%d: parent %s awaiting %d; want awaiting %d", i+1, got.State, got.Awaiting, want)
			}
			// Only the count (and updated_at) changes.
			exp := *prev
			exp.Awaiting, exp.UpdatedAt = want, got.UpdatedAt
			if !reflect.DeepEqual(got, &exp) {
				t.Errorf("RunChildFinished #%d changed more than the count:\n got %+v\nwant %+v", i+1, got, &exp)
			}
			if stored := getRun(ctx, t, drv, parent.ID); !reflect.DeepEqual(stored, got) {
				t.Errorf("RunChildFinished #%d: RunGet = %+v, want %+v", i+1, stored, got)
			}
			if s := stepNamed(t, runSteps(ctx, t, drv, parent.ID), "fanout"); s.State != acidic.StepAwaiting {
				t.Errorf("RunChildFinished #%d: step fanout = %s before the last child, want awaiting", i+1, s.State)
			}
			prev = got
		}

		stepsBefore := runSteps(ctx, t, drv, parent.ID)
		before := time.Now()
		lastChild := newChild(ctx, t, drv, parent.ID, "fanout")
		got, counted, err := drv.RunChildFinished(ctx, storage.RunChildFinishedParams{ChildID: lastChild})
		if err != nil {
			t.Fatalf("RunChildFinished #3: %v", err)
		}
		if got == nil || !counted || got.State != acidic.RunPending || got.Awaiting != 0 {
			t.Fatalf("last RunChildFinished = %+v, %v; want the parent pending, awaiting 0, true", got, counted)
		}
		if got.LockedBy != "" || got.FinishedAt != nil || got.RecoveryPoint != "after" || got.Error != "" {
			t.Errorf("resumed parent = %+v, want unleased, unfinished, at its recovery point", got)
		}
		if stored := getRun(ctx, t, drv, parent.ID); !reflect.DeepEqual(stored, got) {
			t.Errorf("RunGet = %+v, want the resumed parent %+v", stored, got)
		}
		steps := runSteps(ctx, t, drv, parent.ID)
		if len(steps) != len(stepsBefore) {
			t.Fatalf("steps after resume = %+v, want %d steps", steps, len(stepsBefore))
		}
		fan := stepNamed(t, steps, "fanout")
		if fan.State != acidic.StepSucceeded || fan.Position != 1 || fan.Executions != 1 || fan.FinishedAt.Before(before.Add(-time.Minute)) {
			t.Errorf("step fanout after the last child = %+v, want succeeded, finished now", fan)
		}
		if prep, old := stepNamed(t, steps, "prep"), stepNamed(t, stepsBefore, "prep"); !reflect.DeepEqual(prep, old) {
			t.Errorf("step prep changed: %+v, was %+v", prep, old)
		}
		if o := getRun(ctx, t, drv, other.ID); !reflect.DeepEqual(o, other) {
			t.Errorf("other parent changed:\n got %+v\nwant %+v", o, other)
		}
		if s := runSteps(ctx, t, drv, other.ID); !reflect.DeepEqual(s, otherSteps) {
			t.Errorf("other parent's steps changed:\n got %+v\nwant %+v", s, otherSteps)
		}

		// A child counted before is not counted again (a retried child
		// that finishes again).
		if _, _, err := drv.RunSetState(ctx, storage.RunSetStateParams{ID: lastChild, From: []acidic.RunState{acidic.RunPending}, To: acidic.RunSucceeded, Error: ""}); err != nil {
			t.Fatalf("RunSetState(child): %v", err)
		}
		if got, counted, err := drv.RunChildFinished(ctx, storage.RunChildFinishedParams{ChildID: lastChild}); err != nil || counted || got != nil {
			t.Errorf("RunChildFinished of a child counted before = %+v, %v, %v; want nil, false", got, counted, err)
		}

		// A fourth child: the parent is no longer awaiting.
		resumed := getRun(ctx, t, drv, parent.ID)
		stepsResumed := runSteps(ctx, t, drv, parent.ID)
		got, counted, err = drv.RunChildFinished(ctx, storage.RunChildFinishedParams{ChildID: newChild(ctx, t, drv, parent.ID, "fanout")})
		if err != nil {
			t.Fatalf("RunChildFinished #4: %v", err)
		}
		if counted {
			t.Errorf("RunChildFinished on a parent no longer awaiting reported true (run %+v)", got)
		}
		if got != nil && !reflect.DeepEqual(got, resumed) {
			t.Errorf("RunChildFinished #4 returned %+v, want nil or the unchanged parent %+v", got, resumed)
		}
		if stored := getRun(ctx, t, drv, parent.ID); !reflect.DeepEqual(stored, resumed) {
			t.Errorf("RunChildFinished #4 changed the parent:\n got %+v\nwant %+v", stored, resumed)
		} else if stored.Awaiting != 0 || stored.State != acidic.RunPending {
			t.Errorf("parent after #4: %s awaiting %d, want pending awaiting 0", stored.State, stored.Awaiting)
		}
		if s := runSteps(ctx, t, drv, parent.ID); !reflect.DeepEqual(s, stepsResumed) {
			t.Errorf("RunChildFinished #4 changed the steps:\n got %+v\nwant %+v", s, stepsResumed)
		}
	})

	t.Run("cancelled parent", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		drv := newDriver(t)
		parent := awaitingParent(ctx, t, drv, "parent", 1)
		cancelled, changed, err := drv.RunSetState(ctx, storage.RunSetStateParams{ID: parent.ID, From: []acidic.RunState{acidic.RunAwaiting}, To: acidic.RunCancelled, Error: "stop"})
		if err != nil || !changed {
			t.Fatalf("RunSetState(awaiting -> cancelled) = %+v, %v, %v", cancelled, changed, err)
		}
		stepsBefore := runSteps(ctx, t, drv, parent.ID)
		got, counted, err := drv.RunChildFinished(ctx, storage.RunChildFinishedParams{ChildID: newChild(ctx, t, drv, parent.ID, "fanout")})
		if err != nil {
			t.Fatalf("RunChildFinished: %v", err)
		}
		if counted || (got != nil && got.State == acidic.RunPending) {
			t.Errorf("RunChildFinished on a cancelled parent = %+v, %v; want it unchanged, false", got, counted)
		}
		if got != nil && !reflect.DeepEqual(got, cancelled) {
			t.Errorf("RunChildFinished returned %+v, want nil or the unchanged parent %+v", got, cancelled)
		}
		if stored := getRun(ctx, t, drv, parent.ID); !reflect.DeepEqual(stored, cancelled) {
			t.Errorf("RunChildFinished changed a cancelled parent:\n got %+v\nwant %+v", stored, cancelled)
		}
		if s := runSteps(ctx, t, drv, parent.ID); !reflect.DeepEqual(s, stepsBefore) {
			t.Errorf("RunChildFinished changed a cancelled parent's steps:\n got %+v\nwant %+v", s, stepsBefore)
		}
	})

	// A child that finishes twice (it was retried) is counted once, while
	// its parent still awaits other children.
	t.Run("retried child counted once", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		drv := newDriver(t)
		parent := awaitingParent(ctx, t, drv, "parent", 2)
		kid := newChild(ctx, t, drv, parent.ID, "fanout")
		if got, counted, err := drv.RunChildFinished(ctx, storage.RunChildFinishedParams{ChildID: kid}); err != nil || !counted || got.Awaiting != 1 || got.State != acidic.RunAwaiting {
			t.Fatalf("RunChildFinished = %+v, %v, %v; want the parent awaiting 1", got, counted, err)
		}
		for _, to := range []acidic.RunState{acidic.RunPending, acidic.RunSucceeded} {
			if _, _, err := drv.RunSetState(ctx, storage.RunSetStateParams{ID: kid, From: []acidic.RunState{acidic.RunSucceeded, acidic.RunPending}, To: to, Error: ""}); err != nil {
				t.Fatalf("RunSetState(child, %s): %v", to, err)
			}
		}
		if got, counted, err := drv.RunChildFinished(ctx, storage.RunChildFinishedParams{ChildID: kid}); err != nil || counted || got != nil {
			t.Errorf("RunChildFinished of the retried child = %+v, %v, %v; want nil, false", got, counted, err)
		}
		if p := getRun(ctx, t, drv, parent.ID); p.Awaiting != 1 || p.State != acidic.RunAwaiting {
			t.Errorf("parent after the retried child finished again: %s awaiting %d, want awaiting 1", p.State, p.Awaiting)
		}
	})

	t.Run("count never below zero", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		drv := newDriver(t)
		// The engine parks a run only with children to await, but a parent
		// left awaiting none must not have its count go negative.
		parent := awaitingParent(ctx, t, drv, "parent", 0)
		stepsBefore := runSteps(ctx, t, drv, parent.ID)
		got, counted, err := drv.RunChildFinished(ctx, storage.RunChildFinishedParams{ChildID: newChild(ctx, t, drv, parent.ID, "fanout")})
		if err != nil {
			t.Fatalf("RunChildFinished: %v", err)
		}
		if counted {
			t.Errorf("RunChildFinished on a parent awaiting nothing = %+v, true; want false", got)
		}
		if stored := getRun(ctx, t, drv, parent.ID); !reflect.DeepEqual(stored, parent) {
			t.Errorf("RunChildFinished changed a parent awaiting nothing:\n got %+v\nwant %+v", stored, parent)
		}
		if s := runSteps(ctx, t, drv, parent.ID); !reflect.DeepEqual(s, stepsBefore) {
			t.Errorf("RunChildFinished changed the steps:\n got %+v\nwant %+v", s, stepsBefore)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		const n = 20
		drv := newDriver(t)
		parent := awaitingParent(ctx, t, drv, "parent", n)
		kids := make([]uuid.UUID, n)
		for i := range kids {
			kids[i] = newChild(ctx, t, drv, parent.ID, "fanout")
		}

		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			runs    = make([]*acidic.Run, n)
			counted = make([]bool, n)
			errs    = make([]error, n)
		)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				runs[i], counted[i], errs[i] = drv.RunChildFinished(ctx, storage.RunChildFinishedParams{ChildID: kids[i]})
			}()
		}
		close(start)
		wg.Wait()

		pending := 0
		seen := make(map[int]bool)
		for i := range n {
			if errs[i] != nil {
				t.Errorf("RunChildFinished #%d: %v", i, errs[i])
				continue
			}
			if !counted[i] || runs[i] == nil {
				t.Errorf("RunChildFinished #%d = %+v, %v; want the child counted", i, runs[i], counted[i])
				continue
			}
			if seen[runs[i].Awaiting] {
				t.Errorf("two children saw the parent awaiting %d", runs[i].Awaiting)
			}
			seen[runs[i].Awaiting] = true
			switch {
			case runs[i].State == acidic.RunPending:
				pending++
				if runs[i].Awaiting != 0 {
					t.Errorf("RunChildFinished #%d: parent pending while awaiting %d", i, runs[i].Awaiting)
				}
			case runs[i].State != acidic.RunAwaiting || runs[i].Awaiting == 0:
				t.Errorf("RunChildFinished #%d: parent %s awaiting %d", i, runs[i].State, runs[i].Awaiting)
			}
		}
		if pending != 1 {
			t.Errorf("%d calls saw the parent pending, want exactly 1", pending)
		}
		stored := getRun(ctx, t, drv, parent.ID)
		if stored.State != acidic.RunPending || stored.Awaiting != 0 {
			t.Errorf("parent after %d children: %s awaiting %d, want pending awaiting 0", n, stored.State, stored.Awaiting)
		}
		if s := stepNamed(t, runSteps(ctx, t, drv, parent.ID), "fanout"); s.State != acidic.StepSucceeded {
			t.Errorf("step fanout after every child = %s, want succeeded", s.State)
		}
		// One child too many changes nothing.
		if got, ok, err := drv.RunChildFinished(ctx, storage.RunChildFinishedParams{ChildID: newChild(ctx, t, drv, parent.ID, "fanout")}); err != nil || ok {
			t.Errorf("extra RunChildFinished = %+v, %v, %v; want false", got, ok, err)
		}
		if after := getRun(ctx, t, drv, parent.ID); !reflect.DeepEqual(after, stored) {
			t.Errorf("extra RunChildFinished changed the parent:\n got %+v\nwant %+v", after, stored)
		}
	})
}

// testJobFinishFreesRunLease guards that JobFinish frees the run lease held
// by the attempt it ends (as JobRescue and JobCancel do, see TestRunLease):
// an executor that could not release the lease itself must not leave the
// run locked until the lease times out. The run goes back to pending with
// its lease cleared and nothing else changed, the old holder is fenced out,
// and the job's next attempt leases it at once. Ending another attempt of
// the run's jobs leaves the lease alone.
func testJobFinishFreesRunLease(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	for _, state := range []acidic.JobState{acidic.JobRetryable, acidic.JobScheduled, acidic.JobCancelled, acidic.JobDiscarded} {
		t.Run(string(state), func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			drv := newDriver(t)
			r := insertRun(ctx, t, drv, "k")
			holder, next, bystander := runningJob(ctx, t, drv, r.ID), runningJob(ctx, t, drv, r.ID), runningJob(ctx, t, drv, r.ID)
			if _, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "a", Job: holder}); !ok {
				t.Fatal("first lease refused")
			}
			held := getRun(ctx, t, drv, r.ID)
			if held.State != acidic.RunRunning || held.LockedBy != "a" {
				t.Fatalf("set-up: run %s locked by %q, want running, a", held.State, held.LockedBy)
			}

			outcome := func(a storage.JobAttempt) storage.JobFinishParams {
				o := storage.JobFinishParams{JobAttempt: a, State: state}
				if state == acidic.JobRetryable || state == acidic.JobScheduled {
					o.ScheduledAt = time.Now().Add(time.Hour)
				}
				if state != acidic.JobScheduled {
					o.Error = &acidic.AttemptError{Attempt: a.Attempt, At: time.Now(), Error: "boom"}
				}
				return o
			}

			// An attempt that does not hold the lease: the run is untouched.
			if ok, err := drv.JobFinish(ctx, outcome(bystander)); err != nil || !ok {
				t.Fatalf("JobFinish(bystander, %s) = %v, %v; want true", state, ok, err)
			}
			if got := getRun(ctx, t, drv, r.ID); !reflect.DeepEqual(got, held) {
				t.Errorf("finishing an attempt that holds no lease changed the run:\n got %+v\nwant %+v", got, held)
			}

			if ok, err := drv.JobFinish(ctx, outcome(holder)); err != nil || !ok {
				t.Fatalf("JobFinish(holder, %s) = %v, %v; want true", state, ok, err)
			}
			got := getRun(ctx, t, drv, r.ID)
			wantReleased(t, got, held, acidic.RunPending, "")

			// The finished attempt's lease is gone: its holder is fenced out ...
			if _, err := drv.RunUpdate(ctx, storage.RunUpdateParams{ID: r.ID, Token: "a", State: acidic.RunRunning, RecoveryPoint: "x"}); !errors.Is(err, acidic.ErrLeaseLost) {
				t.Errorf("RunUpdate by the finished attempt's token: err = %v, want ErrLeaseLost", err)
			}
			// ... and the next attempt takes the run at once.
			relet, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "b", Job: next})
			if !ok || relet.LockedBy != "b" {
				t.Fatalf("lease of a %s attempt not taken over at once: ok %v, locked by %q", state, ok, relet.LockedBy)
			}
		})
	}
}
