package queue_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

func noopWork(context.Context, *acidic.Job) error { return nil }

// A kind's options (KindOptions, given to Handle) fill every option an
// enqueue leaves unset, and an option the enqueue sets wins. The test covers
// every field of KindOptions: a field added later fails it until a case
// says how enqueues (or workers) honour it.
func TestKindOptionsFillEveryOptionLeftUnset(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		now := time.Now().UTC().Truncate(time.Microsecond)
		ctx := ctxT(t)
		// One client per case: each case defines one kind.
		client := func(t *testing.T, o queue.KindOptions) *queue.Client {
			t.Helper()
			ws := queue.NewWorkers()
			if err := ws.Handle(t.Name(), noopWork, o); err != nil {
				t.Fatalf("Handle: %v", err)
			}
			return newClient(t, drv, queue.Config{Workers: ws, Logger: quietLogger(), Now: func() time.Time { return now }})
		}
		enqueue := func(t *testing.T, c *queue.Client, args any, o queue.EnqueueOptions) *acidic.Job {
			t.Helper()
			j, err := c.Enqueue(ctx, t.Name(), args, o)
			if err != nil {
				t.Fatalf("Enqueue: %v", err)
			}
			return j
		}
		cases := map[string]func(t *testing.T){
			"Queue": func(t *testing.T) {
				c := client(t, queue.KindOptions{Queue: "from-kind"})
				if j := enqueue(t, c, nil, queue.EnqueueOptions{}); j.Queue != "from-kind" {
					t.Errorf("queue %q, want the kind's", j.Queue)
				}
				if j := enqueue(t, c, nil, queue.EnqueueOptions{Queue: "own"}); j.Queue != "own" {
					t.Errorf("queue %q, want the enqueue's", j.Queue)
				}
			},
			"Priority": func(t *testing.T) {
				c := client(t, queue.KindOptions{Priority: queue.PriorityOf(2)})
				if j := enqueue(t, c, nil, queue.EnqueueOptions{}); j.Priority != 2 {
					t.Errorf("priority %d, want the kind's 2", j.Priority)
				}
				if j := enqueue(t, c, nil, queue.EnqueueOptions{Priority: queue.PriorityOf(3)}); j.Priority != 3 {
					t.Errorf("priority %d, want the enqueue's 3", j.Priority)
				}
				// 0 is a priority, not "unset": it wins over the kind's 2.
				if j := enqueue(t, c, nil, queue.EnqueueOptions{Priority: queue.PriorityOf(0)}); j.Priority != 0 {
					t.Errorf("priority %d, want the enqueue's 0", j.Priority)
				}
			},
			"MaxAttempts": func(t *testing.T) {
				c := client(t, queue.KindOptions{MaxAttempts: 7})
				if j := enqueue(t, c, nil, queue.EnqueueOptions{}); j.MaxAttempts != 7 {
					t.Errorf("max attempts %d, want the kind's 7", j.MaxAttempts)
				}
				if j := enqueue(t, c, nil, queue.EnqueueOptions{MaxAttempts: 1}); j.MaxAttempts != 1 {
					t.Errorf("max attempts %d, want the enqueue's 1", j.MaxAttempts)
				}
			},
			"ScheduleIn": func(t *testing.T) {
				c := client(t, queue.KindOptions{ScheduleIn: 10 * time.Minute})
				if j := enqueue(t, c, nil, queue.EnqueueOptions{}); !j.ScheduledAt.Equal(now.Add(10*time.Minute)) || j.State != acidic.JobScheduled {
					t.Errorf("%s at %s, want scheduled 10 minutes out (%s)", j.State, j.ScheduledAt, now.Add(10*time.Minute))
				}
				if j := enqueue(t, c, nil, queue.EnqueueOptions{ScheduleIn: time.Minute}); !j.ScheduledAt.Equal(now.Add(time.Minute)) {
					t.Errorf("scheduled at %s, want the enqueue's ScheduleIn", j.ScheduledAt)
				}
				// The enqueue's ScheduledAt is its schedule: the kind's delay
				// does not add to it.
				at := now.Add(time.Hour)
				if j := enqueue(t, c, nil, queue.EnqueueOptions{ScheduledAt: at}); !j.ScheduledAt.Equal(at) {
					t.Errorf("scheduled at %s, want the enqueue's ScheduledAt %s", j.ScheduledAt, at)
				}
			},
			"Meta": func(t *testing.T) {
				c := client(t, queue.KindOptions{Meta: json.RawMessage(`{"from":"kind"}`)})
				if j := enqueue(t, c, nil, queue.EnqueueOptions{}); !jsonEqual(j.Meta, `{"from":"kind"}`) {
					t.Errorf("meta %s, want the kind's", j.Meta)
				}
				if j := enqueue(t, c, nil, queue.EnqueueOptions{Meta: json.RawMessage(`{"own":1}`)}); !jsonEqual(j.Meta, `{"own":1}`) {
					t.Errorf("meta %s, want the enqueue's", j.Meta)
				}
			},
			"Unique": func(t *testing.T) {
				c := client(t, queue.KindOptions{Unique: &queue.UniqueOptions{}})
				args := map[string]int{"n": 1, "m": 1}
				first := enqueue(t, c, args, queue.EnqueueOptions{})
				if again := enqueue(t, c, args, queue.EnqueueOptions{}); first.UniqueKey == nil || !again.Duplicate || again.ID != first.ID {
					t.Errorf("second enqueue: job %d duplicate %v, want a duplicate of %d through the kind's Unique", again.ID, again.Duplicate, first.ID)
				}
				own := enqueue(t, c, args, queue.EnqueueOptions{Unique: &queue.UniqueOptions{ArgKeys: []string{"n"}}})
				if own.Duplicate || bytes.Equal(own.UniqueKey, first.UniqueKey) {
					t.Errorf("enqueue with its own Unique got the kind's key (duplicate %v)", own.Duplicate)
				}
			},
			"Replace": func(t *testing.T) {
				c := client(t, queue.KindOptions{
					Unique:  &queue.UniqueOptions{ArgKeys: []string{"order"}},
					Replace: &queue.ReplaceOptions{Args: true},
				})
				first := enqueue(t, c, map[string]int{"order": 1, "v": 1}, queue.EnqueueOptions{})
				if j := enqueue(t, c, map[string]int{"order": 1, "v": 2}, queue.EnqueueOptions{}); j.ID != first.ID || !jsonEqual(j.Args, `{"order":1,"v":2}`) {
					t.Errorf("duplicate: job %d args %s, want job %d with args replaced by the kind's Replace", j.ID, j.Args, first.ID)
				}
				j := enqueue(t, c, map[string]int{"order": 1, "v": 3}, queue.EnqueueOptions{Priority: queue.PriorityOf(1), Replace: &queue.ReplaceOptions{Priority: true}})
				if j.ID != first.ID || !jsonEqual(j.Args, `{"order":1,"v":2}`) || j.Priority != 1 {
					t.Errorf("duplicate with its own Replace: args %s priority %d, want args kept and priority 1", j.Args, j.Priority)
				}
			},
			"Backoff": func(t *testing.T) {
				ws := queue.NewWorkers()
				err := ws.Handle(t.Name(), func(context.Context, *acidic.Job) error { return errors.New("fails") },
					queue.KindOptions{Backoff: func(int, error) time.Duration { return 7 * time.Hour }})
				if err != nil {
					t.Fatal(err)
				}
				c := newClient(t, drv, queue.Config{Workers: ws, Logger: quietLogger()})
				j, err := c.Enqueue(ctx, t.Name(), nil, queue.EnqueueOptions{Queue: "backoff"})
				if err != nil {
					t.Fatal(err)
				}
				if res, err := c.Drain(ctx, "backoff", queue.DrainOptions{}); err != nil || res.Failure != 1 {
					t.Fatalf("drain: %+v %v", res, err)
				}
				j, err = c.Get(ctx, j.ID)
				if err != nil || j.State != acidic.JobRetryable || j.ScheduledAt.Before(time.Now().Add(6*time.Hour)) {
					t.Errorf("failed job %v: %s, due %s; want retryable in the kind's 7 hours", err, j.State, j.ScheduledAt)
				}
			},
			"Timeout": func(t *testing.T) {
				ws := queue.NewWorkers()
				var deadline time.Time
				err := ws.Handle(t.Name(), func(ctx context.Context, _ *acidic.Job) error {
					deadline, _ = ctx.Deadline()
					return nil
				}, queue.KindOptions{Timeout: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				before := time.Now()
				if err := ws.Work(context.Background(), &acidic.Job{Kind: t.Name()}); err != nil {
					t.Fatal(err)
				}
				if deadline.Before(before.Add(59*time.Minute)) || deadline.After(time.Now().Add(time.Hour)) {
					t.Errorf("the attempt's deadline is %s, want the kind's hour from its start", deadline)
				}
			},
		}
		typ := reflect.TypeFor[queue.KindOptions]()
		for i := range typ.NumField() {
			name := typ.Field(i).Name
			if cases[name] == nil {
				t.Errorf("KindOptions.%s has no case here: say how enqueues or workers honour it and add one", name)
				continue
			}
			t.Run(name, cases[name])
			delete(cases, name)
		}
		for name := range cases {
			t.Errorf("case %q names no field of KindOptions", name)
		}
	})
}

// Every way into the queue honours a kind's options: Enqueue, EnqueueTx,
// EnqueueMany, EnqueueManyTx, EnqueueGraph, EnqueueGraphTx and JobInsert.
// (Jobs staged by workflow steps: workflow/kindoptions_test.go; the
// acidictest helpers: acidictest/kindoptions_test.go.)
func TestKindOptionsHonouredByEveryEnqueue(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		ws := queue.NewWorkers()
		if err := ws.Handle("defined", noopWork, queue.KindOptions{Queue: "payments", Priority: queue.PriorityOf(2), MaxAttempts: 4}); err != nil {
			t.Fatal(err)
		}
		c := newClient(t, drv, queue.Config{Workers: ws, Logger: quietLogger()})
		check := func(how string, j *acidic.Job) {
			t.Helper()
			if j.Queue != "payments" || j.Priority != 2 || j.MaxAttempts != 4 {
				t.Errorf("%s: queue %q priority %d max attempts %d; want the kind's payments, 2, 4", how, j.Queue, j.Priority, j.MaxAttempts)
			}
		}
		j, err := c.Enqueue(ctx, "defined", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		check("Enqueue", j)
		err = drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
			j, err := c.EnqueueTx(ctx, tx, "defined", nil, queue.EnqueueOptions{})
			if err == nil {
				check("EnqueueTx", j)
			}
			jobs, err := c.EnqueueManyTx(ctx, tx, []queue.EnqueueParams{{Kind: "defined"}})
			if err == nil {
				check("EnqueueManyTx", jobs[0])
			}
			var g queue.Graph
			g.Add(queue.GraphJob{Name: "a", Kind: "defined"})
			graph, err := c.EnqueueGraphTx(ctx, tx, &g)
			if err == nil {
				check("EnqueueGraphTx", graph["a"])
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		jobs, err := c.EnqueueMany(ctx, []queue.EnqueueParams{{Kind: "defined"}, {Kind: "defined"}})
		if err != nil {
			t.Fatal(err)
		}
		check("EnqueueMany", jobs[1])
		var g queue.Graph
		g.Add(queue.GraphJob{Name: "a", Kind: "defined"}).Add(queue.GraphJob{Name: "b", Kind: "defined", After: []string{"a"}})
		graph, err := c.EnqueueGraph(ctx, &g)
		if err != nil {
			t.Fatal(err)
		}
		check("EnqueueGraph", graph["b"])
		in, err := c.JobInsert(queue.EnqueueParams{Kind: "defined"})
		if err != nil {
			t.Fatal(err)
		}
		check("JobInsert", &acidic.Job{Queue: in.Queue, Priority: in.Priority, MaxAttempts: in.MaxAttempts})
	})
}

// A kind whose options every enqueue would refuse is refused when it is
// defined, and not registered.
func TestHandleRefusesBadKindOptions(t *testing.T) {
	t.Parallel()
	for name, o := range map[string]queue.KindOptions{
		"bad queue":               {Queue: "a\x00b"},
		"negative priority":       {Priority: queue.PriorityOf(-1)},
		"priority past 3":         {Priority: queue.PriorityOf(queue.LowestPriority + 1)},
		"negative attempts":       {MaxAttempts: -1},
		"negative delay":          {ScheduleIn: -time.Second},
		"negative timeout":        {Timeout: -time.Second},
		"replace sans unique":     {Replace: &queue.ReplaceOptions{Args: true}},
		"bad unique field":        {Unique: &queue.UniqueOptions{Fields: []queue.UniqueField{"colour"}}},
		"first insert, no period": {Unique: &queue.UniqueOptions{PeriodFrom: queue.FirstInsert}},
		"bad meta":                {Meta: json.RawMessage("{")},
	} {
		ws := queue.NewWorkers()
		if err := ws.Handle("k", noopWork, o); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("%s: Handle = %v, want ErrInvalid", name, err)
		}
		if err := ws.Handle("k", noopWork, queue.KindOptions{}); err != nil {
			t.Errorf("%s: the refused kind was registered: %v", name, err)
		}
	}
}

// Priority's zero value is unset, distinct from PriorityOf(0).
func TestPriorityUnsetIsNotZero(t *testing.T) {
	t.Parallel()
	if n, set := (queue.Priority{}).Value(); set || n != 0 {
		t.Errorf("zero Priority: %d, %v; want unset", n, set)
	}
	if n, set := queue.PriorityOf(0).Value(); !set || n != 0 {
		t.Errorf("PriorityOf(0): %d, %v; want 0, set", n, set)
	}
	if s := (queue.Priority{}).String() + " " + queue.PriorityOf(3).String(); s != "unset 3" {
		t.Errorf("String: %q", s)
	}
}

// jsonEqual reports whether the JSON got means the same as want.
func jsonEqual(got []byte, want string) bool {
	var a, b any
	if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	return reflect.DeepEqual(a, b)
}
