package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

type stagerKey struct{}

// The publish hooks see every message staged through the engine, with the
// stager's context: a step's Publish (the context the step passes) and
// PublishTx in the caller's transaction store the Meta the hooks return;
// a hook's error fails the step, and its message is not staged.
func TestPublishHooksSetMessageMeta(t *testing.T) {
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		errHook := errors.New("hook refused")
		cfg := engineConfig(1)
		cfg.PublishHooks = []workflow.PublishHook{
			func(ctx context.Context, topic string, meta json.RawMessage) (json.RawMessage, error) {
				if topic == "refused" {
					return nil, errHook
				}
				who, _ := ctx.Value(stagerKey{}).(string)
				if who == "" {
					return nil, nil
				}
				return json.Marshal(map[string]string{"by": who, "topic": topic})
			},
			// A second hook sees the first's Meta and may keep it.
			func(ctx context.Context, topic string, meta json.RawMessage) (json.RawMessage, error) {
				return meta, nil
			},
		}
		wf := workflow.Define[struct{}, struct{}]("publisher", fastOptions(1)).
			Step("stage", func(ctx context.Context, sc *steps.Context[struct{}, struct{}]) error {
				if err := sc.Publish(context.WithValue(ctx, stagerKey{}, "step"), "orders", "o1", map[string]int{"n": 1}); err != nil {
					return err
				}
				return sc.Publish(ctx, "plain", "o1", 2) // no stager: no Meta
			})
		refusing := workflow.Define[struct{}, struct{}]("refusing", fastOptions(1)).
			Step("stage", func(ctx context.Context, sc *steps.Context[struct{}, struct{}]) error {
				return sc.Publish(ctx, "refused", "r", 3)
			})
		e := newEngine(t, drv, cfg, wf, refusing)

		ok, err := e.Enqueue(ctx, "publisher", struct{}{}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bad, err := e.Enqueue(ctx, "refusing", struct{}{}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := drv.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
			return e.PublishTx(context.WithValue(ctx, stagerKey{}, "request"), tx, "invoices", "i1", "x")
		}); err != nil {
			t.Fatalf("PublishTx: %v", err)
		}
		if err := e.PublishTx(ctx, drv, "", "k", 1); !errors.Is(err, workflow.ErrInvalid) {
			t.Errorf("PublishTx without a topic = %v, want ErrInvalid", err)
		}
		drain(t, e)
		if r := waitRun(t, e, ok.Run.ID, acidic.RunSucceeded); r.State != acidic.RunSucceeded {
			t.Fatalf("publisher run %s", r.State)
		}
		r := waitRun(t, e, bad.Run.ID, acidic.RunFailed)
		if r.State != acidic.RunFailed {
			t.Fatalf("refusing run %s, want failed by the hook's error", r.State)
		}

		msgs, err := drv.OutboxList(ctx, storage.OutboxListParams{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, m := range msgs {
			got[m.Topic] = string(m.Meta)
		}
		want := map[string]string{
			"orders":   `{"by":"step","topic":"orders"}`,
			"plain":    "",
			"invoices": `{"by":"request","topic":"invoices"}`,
		}
		if len(got) != len(want) {
			t.Fatalf("staged messages by topic: %v, want %v (none for the refused topic)", got, want)
		}
		for topic, w := range want {
			g, ok := got[topic]
			if !ok || (w == "" && g != "") || (w != "" && !jsonSame(g, w)) {
				t.Errorf("message to %q: Meta %q, want %q", topic, g, w)
			}
		}
	})
}

func jsonSame(a, b string) bool {
	var va, vb any
	if json.Unmarshal([]byte(a), &va) != nil || json.Unmarshal([]byte(b), &vb) != nil {
		return false
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return string(ja) == string(jb)
}

// A publish hook that refuses or panics fails the step that staged the
// message, and the step's transaction rolls back with the messages it had
// staged before; on its last attempt the run fails with the hook's reason.
// PublishTx in a caller's transaction returns the hook's error, and the
// caller's rollback leaves nothing staged.
func TestPublishHookFailureRollsBackTheStep(t *testing.T) {
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		errHook := errors.New("hook refused")
		cfg := engineConfig(1)
		cfg.PublishHooks = []workflow.PublishHook{
			func(ctx context.Context, topic string, meta json.RawMessage) (json.RawMessage, error) {
				switch topic {
				case "refused":
					return nil, errHook
				case "exploding":
					panic("hook exploded")
				}
				return nil, nil
			},
		}
		var attempts counter
		define := func(name, failing string) workflow.Definition {
			return workflow.Define[struct{}, struct{}](name, fastOptions(2)).
				Step("stage", func(ctx context.Context, sc *steps.Context[struct{}, struct{}]) error {
					attempts.inc(name)
					if err := sc.Publish(ctx, "staged-first", name, 1); err != nil {
						return err
					}
					return sc.Publish(ctx, failing, name, 2)
				})
		}
		e := newEngine(t, drv, cfg, define("refusing", "refused"), define("exploding", "exploding"))
		reasons := map[string]string{"refusing": "hook refused", "exploding": "hook exploded"}
		ids := map[string]uuid.UUID{}
		for name := range reasons {
			ids[name] = enqueue(t, e, name, struct{}{})
		}
		drain(t, e)
		for name, reason := range reasons {
			r := getRun(t, e, ids[name])
			if r.State != acidic.RunFailed || !strings.Contains(r.Error, reason) {
				t.Errorf("run %s: %s (%q), want failed with %q", name, r.State, r.Error, reason)
			}
			if n := attempts.get(name); n != 2 {
				t.Errorf("run %s: the step ran %d times, want 2 (both attempts)", name, n)
			}
		}

		// PublishTx: the hook's error comes back; the caller rolls back.
		err := drv.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
			if err := e.PublishTx(ctx, tx, "staged-first", "tx", 1); err != nil {
				return err
			}
			return e.PublishTx(ctx, tx, "refused", "tx", 2)
		})
		if !errors.Is(err, errHook) {
			t.Fatalf("PublishTx with a refusing hook = %v, want the hook's error", err)
		}
		msgs, err := drv.OutboxList(ctx, storage.OutboxListParams{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 0 {
			t.Fatalf("%d messages staged (first %q key %q), want none: every staging rolled back", len(msgs), msgs[0].Topic, msgs[0].Key)
		}
	})
}
