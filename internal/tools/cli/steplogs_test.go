package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/enginetest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/internal/tools/cli"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// `acidic runs get` shows what is kept with each step: its failed attempts
// and the records it wrote through its logger, in text and in -json.
func TestRunsGetShowsStepLogsAndFailures(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cfg := enginetest.Config(1)
		cfg.Logger = enginetest.QuietLogger()
		wf := workflow.Define("pay", workflow.Options{MaxAttempts: 3, Backoff: func(int, error) time.Duration { return time.Millisecond }},
			steps.Do("charge", func(ctx context.Context, sc *steps.Context[struct{}, struct{}]) error {
				if sc.Attempt() == 1 {
					return errors.New("gateway timeout")
				}
				sc.Logger().Info("charged", "amount", 42, "note", "line\nbreak \x1b[31m")
				return nil
			}))
		eng := enginetest.New(t, drv, cfg, wf)
		res, err := eng.Enqueue(ctx, "pay", struct{}{}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		enginetest.Start(t, eng)
		enginetest.WaitRun(t, eng, res.Run.ID, acidic.RunSucceeded)

		a := shell{t: t, ctx: ctx, base: dbFlags(drv)}
		text := a.text("runs", "get", res.Run.ID.String())
		for _, want := range []string{"failed attempts (1):", "attempt 1", "gateway timeout", "logs:", "INFO", "attempt 2  charged", `"amount":42`} {
			if !strings.Contains(text, want) {
				t.Errorf("runs get: no %q in\n%s", want, text)
			}
		}
		if strings.Contains(text, "\x1b") {
			t.Errorf("runs get printed a raw escape:\n%q", text)
		}

		var got cli.RunDetailJSON
		a.json(&got, "runs", "get", res.Run.ID.String())
		if len(got.Steps) != 1 {
			t.Fatalf("steps %+v", got.Steps)
		}
		s := got.Steps[0]
		if len(s.Logs) != 1 || s.Logs[0].Message != "charged" || s.Logs[0].Level != "INFO" || s.Logs[0].Attempt != 2 || s.LogsDropped != 0 {
			t.Fatalf("logs %+v", s.Logs)
		}
		var attrs bytes.Buffer
		if err := json.Compact(&attrs, s.Logs[0].Attrs); err != nil || attrs.String() != `{"amount":42,"note":"line\nbreak \u001b[31m"}` {
			t.Errorf("log attrs %s (%v)", attrs.String(), err)
		}
		if len(s.Failures) != 1 || s.Failures[0].Attempt != 1 || s.Failures[0].Error != "gateway timeout" || s.FailuresDropped != 0 {
			t.Errorf("failures %+v", s.Failures)
		}
	})
}
