package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

func TestGraphRunsInDependencyOrder(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		ran := recordOrder(ws, "step")
		c := newClient(t, drv, fastConfig(ws, 4))
		var g queue.Graph
		g.Add(queue.GraphJob{Name: "d", Kind: "step", Args: "d", After: []string{"c"}}).
			Add(queue.GraphJob{Name: "c", Kind: "step", Args: "c", After: []string{"a", "b"}}).
			Add(queue.GraphJob{Name: "a", Kind: "step", Args: "a"}).
			Add(queue.GraphJob{Name: "b", Kind: "step", Args: "b", Opts: queue.EnqueueOptions{Queue: "default"}})
		jobs, err := c.EnqueueGraph(ctxT(t), &g)
		if err != nil {
			t.Fatal(err)
		}
		if jobs["c"].State != acidic.JobPending || jobs["a"].State != acidic.JobAvailable || len(jobs["c"].DependsOn) != 2 {
			t.Fatalf("inserted states: a %s, c %s deps %v", jobs["a"].State, jobs["c"].State, jobs["c"].DependsOn)
		}
		start(t, c)
		waitJob(t, drv, jobs["d"].ID, acidic.JobCompleted)
		got := strings.Join(ran(), "")
		if got != "abcd" && got != "bacd" {
			t.Fatalf("order %q, want a and b (any order), then c, then d", got)
		}
	})
}

func TestGraphDependencyFailurePolicies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		policy queue.DependencyFailure
		c, d   acidic.JobState
	}{
		{"", acidic.JobCancelled, acidic.JobCancelled},
		{queue.DiscardDependents, acidic.JobDiscarded, acidic.JobCancelled},
		{queue.IgnoreFailure, acidic.JobCompleted, acidic.JobCompleted},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			t.Parallel()
			drv := testdb.New(t, testdb.Options{})
			ws := queue.NewWorkers()
			var mu sync.Mutex
			ran := map[string]bool{}
			_ = ws.Handle("step", func(ctx context.Context, job *acidic.Job) error {
				var name string
				_ = json.Unmarshal(job.Args, &name)
				mu.Lock()
				ran[name] = true
				mu.Unlock()
				if name == "b" {
					return errors.New("b fails")
				}
				return nil
			}, queue.KindOptions{})
			c := newClient(t, drv, fastConfig(ws, 2))
			var g queue.Graph
			g.Add(queue.GraphJob{Name: "a", Kind: "step", Args: "a"})
			g.Add(queue.GraphJob{Name: "b", Kind: "step", Args: "b", Opts: queue.EnqueueOptions{MaxAttempts: 1}})
			g.Add(queue.GraphJob{Name: "c", Kind: "step", Args: "c", After: []string{"a", "b"}, OnDependencyFailure: tc.policy})
			g.Add(queue.GraphJob{Name: "d", Kind: "step", Args: "d", After: []string{"c"}})
			jobs, err := c.EnqueueGraph(ctxT(t), &g)
			if err != nil {
				t.Fatal(err)
			}
			start(t, c)
			cj := waitJob(t, drv, jobs["c"].ID, acidic.JobCompleted, acidic.JobCancelled, acidic.JobDiscarded)
			dj := waitJob(t, drv, jobs["d"].ID, acidic.JobCompleted, acidic.JobCancelled, acidic.JobDiscarded)
			if cj.State != tc.c || dj.State != tc.d {
				t.Fatalf("c %s, d %s; want c %s, d %s", cj.State, dj.State, tc.c, tc.d)
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.c != acidic.JobCompleted && (ran["c"] || ran["d"]) {
				t.Fatalf("dependents of a failed job ran: %v", ran)
			}
			if tc.c != acidic.JobCompleted && !strings.Contains(cj.Errors[0].Error, "dependency") {
				t.Fatalf("c's error %v should name the failed dependency", cj.Errors)
			}
		})
	}
}

func TestGraphRejectsBadShapes(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		c := newClient(t, drv, queue.Config{})
		cases := map[string][]queue.GraphJob{
			"empty":        nil,
			"no name":      {{Kind: "k"}},
			"duplicate":    {{Name: "a", Kind: "k"}, {Name: "a", Kind: "k"}},
			"unknown dep":  {{Name: "a", Kind: "k", After: []string{"zzz"}}},
			"self":         {{Name: "a", Kind: "k", After: []string{"a"}}},
			"cycle":        {{Name: "a", Kind: "k", After: []string{"c"}}, {Name: "b", Kind: "k", After: []string{"a"}}, {Name: "c", Kind: "k", After: []string{"b"}}, {Name: "x", Kind: "k"}},
			"bad policy":   {{Name: "a", Kind: "k", OnDependencyFailure: "explode"}},
			"bad job opts": {{Name: "a", Kind: ""}},
		}
		for name, jobs := range cases {
			var g queue.Graph
			for _, j := range jobs {
				g.Add(j)
			}
			_, err := c.EnqueueGraph(ctxT(t), &g)
			want := queue.ErrInvalidGraph
			if name == "bad job opts" {
				want = queue.ErrInvalid
			}
			if !errors.Is(err, want) {
				t.Errorf("%s: err %v, want %v", name, err, want)
			}
			if name == "cycle" && (err == nil || !strings.Contains(err.Error(), "a, b, c")) {
				t.Errorf("cycle error %v should name a, b, c", err)
			}
		}
		if n := countRows(t, drv, "jobs"); n != 0 {
			t.Fatalf("rejected graphs wrote %d jobs", n)
		}
	})
}

// A graph's jobs get their kinds' options like any enqueue, and a unique
// one (by its options or its kind's) is refused before anything is
// written: a duplicate would leave its dependents waiting on another graph
// (a whole graph is made unique by its Key instead).
func TestGraphAppliesKindOptionsAndRefusesUniqueJobs(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		noop := func(context.Context, *acidic.Job) error { return nil }
		_ = ws.Handle("slow", noop, queue.KindOptions{Priority: queue.PriorityOf(3), MaxAttempts: 7, Queue: "default"})
		_ = ws.Handle("single", noop, queue.KindOptions{Unique: &queue.UniqueOptions{}})
		c := newClient(t, drv, fastConfig(ws, 1))
		ctx := ctxT(t)
		var g queue.Graph
		g.Add(queue.GraphJob{Name: "a", Kind: "slow"}).Add(queue.GraphJob{Name: "b", Kind: "plain", After: []string{"a"}})
		jobs, err := c.EnqueueGraph(ctx, &g)
		if err != nil {
			t.Fatal(err)
		}
		if a := jobs["a"]; a.Priority != 3 || a.MaxAttempts != 7 {
			t.Errorf("graph job of kind slow: priority %d, max attempts %d; want its kind's 3 and 7", a.Priority, a.MaxAttempts)
		}
		before := countRows(t, drv, "jobs")
		for name, job := range map[string]queue.GraphJob{
			"by kind options": {Name: "u", Kind: "single"},
			"by options":      {Name: "u", Kind: "plain", Opts: queue.EnqueueOptions{Unique: &queue.UniqueOptions{}}},
		} {
			var g queue.Graph
			g.Add(queue.GraphJob{Name: "first", Kind: "plain"}).Add(job)
			if _, err := c.EnqueueGraph(ctx, &g); !errors.Is(err, queue.ErrInvalidGraph) {
				t.Errorf("%s: EnqueueGraph with a unique job: %v, want ErrInvalidGraph", name, err)
			}
		}
		if after := countRows(t, drv, "jobs"); after != before {
			t.Errorf("refused graphs wrote %d jobs", after-before)
		}
	})
}
