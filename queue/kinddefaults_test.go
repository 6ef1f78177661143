package queue_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
)

// Config.KindDefaults fills every option an enqueue leaves zero, and an
// option the enqueue sets wins. The test covers every field of
// EnqueueOptions: a field added later fails it until a case says how the
// defaults treat it.
func TestKindDefaultsFillEveryOptionLeftZero(t *testing.T) {
	t.Parallel()
	drv := testdb.New(t, testdb.Options{})
	now := time.Now().UTC().Truncate(time.Microsecond)
	ctx := ctxT(t)
	// One client per case: each case configures one kind's defaults.
	client := func(t *testing.T, d queue.EnqueueOptions) *queue.Client {
		return newClient(t, drv, queue.Config{
			Logger:       quietLogger(),
			Now:          func() time.Time { return now },
			KindDefaults: map[string]queue.EnqueueOptions{t.Name(): d},
		})
	}
	enqueue := func(t *testing.T, c *queue.Client, args any, o queue.EnqueueOptions) *acidic.Job {
		t.Helper()
		j, err := c.Enqueue(ctx, t.Name(), args, o)
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		return j
	}
	at := now.Add(time.Hour)
	cases := map[string]func(t *testing.T){
		"Queue": func(t *testing.T) {
			c := client(t, queue.EnqueueOptions{Queue: "from-defaults"})
			if j := enqueue(t, c, nil, queue.EnqueueOptions{}); j.Queue != "from-defaults" {
				t.Errorf("queue %q, want the default's", j.Queue)
			}
			if j := enqueue(t, c, nil, queue.EnqueueOptions{Queue: "own"}); j.Queue != "own" {
				t.Errorf("queue %q, want the enqueue's", j.Queue)
			}
		},
		"Priority": func(t *testing.T) {
			c := client(t, queue.EnqueueOptions{Priority: 2})
			if j := enqueue(t, c, nil, queue.EnqueueOptions{}); j.Priority != 2 {
				t.Errorf("priority %d, want the default's 2", j.Priority)
			}
			if j := enqueue(t, c, nil, queue.EnqueueOptions{Priority: 3}); j.Priority != 3 {
				t.Errorf("priority %d, want the enqueue's 3", j.Priority)
			}
		},
		"MaxAttempts": func(t *testing.T) {
			c := client(t, queue.EnqueueOptions{MaxAttempts: 7})
			if j := enqueue(t, c, nil, queue.EnqueueOptions{}); j.MaxAttempts != 7 {
				t.Errorf("max attempts %d, want the default's 7", j.MaxAttempts)
			}
			if j := enqueue(t, c, nil, queue.EnqueueOptions{MaxAttempts: 1}); j.MaxAttempts != 1 {
				t.Errorf("max attempts %d, want the enqueue's 1", j.MaxAttempts)
			}
		},
		"ScheduledAt": func(t *testing.T) {
			c := client(t, queue.EnqueueOptions{ScheduledAt: at})
			if j := enqueue(t, c, nil, queue.EnqueueOptions{}); !j.ScheduledAt.Equal(at) || j.State != acidic.JobScheduled {
				t.Errorf("%s at %s, want scheduled at the default's %s", j.State, j.ScheduledAt, at)
			}
			own := now.Add(2 * time.Hour)
			if j := enqueue(t, c, nil, queue.EnqueueOptions{ScheduledAt: own}); !j.ScheduledAt.Equal(own) {
				t.Errorf("scheduled at %s, want the enqueue's %s", j.ScheduledAt, own)
			}
			// The enqueue's ScheduleIn is its schedule: the default
			// ScheduledAt does not overrule it.
			if j := enqueue(t, c, nil, queue.EnqueueOptions{ScheduleIn: time.Minute}); !j.ScheduledAt.Equal(now.Add(time.Minute)) {
				t.Errorf("scheduled at %s, want the enqueue's ScheduleIn (%s)", j.ScheduledAt, now.Add(time.Minute))
			}
		},
		"ScheduleIn": func(t *testing.T) {
			c := client(t, queue.EnqueueOptions{ScheduleIn: 10 * time.Minute})
			if j := enqueue(t, c, nil, queue.EnqueueOptions{}); !j.ScheduledAt.Equal(now.Add(10*time.Minute)) || j.State != acidic.JobScheduled {
				t.Errorf("%s at %s, want scheduled 10 minutes out (%s)", j.State, j.ScheduledAt, now.Add(10*time.Minute))
			}
			if j := enqueue(t, c, nil, queue.EnqueueOptions{ScheduleIn: time.Minute}); !j.ScheduledAt.Equal(now.Add(time.Minute)) {
				t.Errorf("scheduled at %s, want the enqueue's ScheduleIn", j.ScheduledAt)
			}
			if j := enqueue(t, c, nil, queue.EnqueueOptions{ScheduledAt: at}); !j.ScheduledAt.Equal(at) {
				t.Errorf("scheduled at %s, want the enqueue's ScheduledAt %s", j.ScheduledAt, at)
			}
		},
		"Meta": func(t *testing.T) {
			c := client(t, queue.EnqueueOptions{Meta: json.RawMessage(`{"from":"defaults"}`)})
			if j := enqueue(t, c, nil, queue.EnqueueOptions{}); !jsonEqual(j.Meta, `{"from":"defaults"}`) {
				t.Errorf("meta %s, want the default's", j.Meta)
			}
			if j := enqueue(t, c, nil, queue.EnqueueOptions{Meta: json.RawMessage(`{"own":1}`)}); !jsonEqual(j.Meta, `{"own":1}`) {
				t.Errorf("meta %s, want the enqueue's", j.Meta)
			}
		},
		"Unique": func(t *testing.T) {
			c := client(t, queue.EnqueueOptions{Unique: &queue.UniqueOptions{}})
			args := map[string]int{"n": 1, "m": 1}
			first := enqueue(t, c, args, queue.EnqueueOptions{})
			if again := enqueue(t, c, args, queue.EnqueueOptions{}); first.UniqueKey == nil || !again.Duplicate || again.ID != first.ID {
				t.Errorf("second enqueue: job %d duplicate %v, want a duplicate of %d through the default Unique", again.ID, again.Duplicate, first.ID)
			}
			own := enqueue(t, c, args, queue.EnqueueOptions{Unique: &queue.UniqueOptions{ArgKeys: []string{"n"}}})
			if own.Duplicate || bytes.Equal(own.UniqueKey, first.UniqueKey) {
				t.Errorf("enqueue with its own Unique got the default's key (duplicate %v)", own.Duplicate)
			}
		},
		"Replace": func(t *testing.T) {
			c := client(t, queue.EnqueueOptions{
				Unique:  &queue.UniqueOptions{ArgKeys: []string{"order"}},
				Replace: &queue.ReplaceOptions{Args: true},
			})
			first := enqueue(t, c, map[string]int{"order": 1, "v": 1}, queue.EnqueueOptions{})
			if j := enqueue(t, c, map[string]int{"order": 1, "v": 2}, queue.EnqueueOptions{}); j.ID != first.ID || !jsonEqual(j.Args, `{"order":1,"v":2}`) {
				t.Errorf("duplicate: job %d args %s, want job %d with args replaced by the default Replace", j.ID, j.Args, first.ID)
			}
			j := enqueue(t, c, map[string]int{"order": 1, "v": 3}, queue.EnqueueOptions{Priority: 1, Replace: &queue.ReplaceOptions{Priority: true}})
			if j.ID != first.ID || !jsonEqual(j.Args, `{"order":1,"v":2}`) || j.Priority != 1 {
				t.Errorf("duplicate with its own Replace: args %s priority %d, want args kept and priority 1", j.Args, j.Priority)
			}
		},
	}
	typ := reflect.TypeFor[queue.EnqueueOptions]()
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		if cases[name] == nil {
			t.Errorf("EnqueueOptions.%s has no case here: say how KindDefaults treats it (withKindDefaults) and add one", name)
			continue
		}
		t.Run(name, cases[name])
		delete(cases, name)
	}
	for name := range cases {
		t.Errorf("case %q names no field of EnqueueOptions", name)
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
