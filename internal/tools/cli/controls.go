package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// The queue controls: queues pause|resume|scale act on every node that
// works the queue (see queue.Client.PauseQueue); queues controls lists them.

// controlAction is what a control command does once connected.
type controlAction func(ctx context.Context, eng *workflow.Engine) (*acidic.QueueControl, error)

// queueByName sets up a control command whose first argument is a queue,
// followed by the arguments more names; act gets those arguments after
// the queue.
func queueByName(cmd string, more []string, act func(queue string, args []string) (controlAction, error)) func(*env, *flag.FlagSet) func([]string) (func() error, error) {
	return func(e *env, _ *flag.FlagSet) func([]string) (func() error, error) {
		return func(args []string) (func() error, error) {
			if err := wantArgs(cmd, args, append([]string{"QUEUE"}, more...)...); err != nil {
				return nil, err
			}
			q := args[0]
			if err := storage.CheckName("queue", q); err != nil {
				return nil, fmt.Errorf("%w: %s: %w", errUsage, cmd, err)
			}
			do, err := act(q, args[1:])
			if err != nil {
				return nil, err
			}
			return func() error { return e.controlQueue(do) }, nil
		}
	}
}

func (e *env) controlQueue(do controlAction) error {
	eng, err := e.engine()
	if err != nil {
		return err
	}
	ctl, err := do(e.ctx, eng)
	if err != nil {
		return err
	}
	return e.printer().emit(queueControlJSON(ctl), func(t *textOut) { printQueueControl(t, ctl) })
}

var (
	setupQueuePause = queueByName("queues pause", nil, func(q string, _ []string) (controlAction, error) {
		return func(ctx context.Context, eng *workflow.Engine) (*acidic.QueueControl, error) {
			return eng.PauseQueue(ctx, q)
		}, nil
	})
	setupQueueResume = queueByName("queues resume", nil, func(q string, _ []string) (controlAction, error) {
		return func(ctx context.Context, eng *workflow.Engine) (*acidic.QueueControl, error) {
			return eng.ResumeQueue(ctx, q)
		}, nil
	})
	setupQueueScale = queueByName("queues scale", []string{"WORKERS"}, func(q string, args []string) (controlAction, error) {
		if args[0] == "default" {
			return func(ctx context.Context, eng *workflow.Engine) (*acidic.QueueControl, error) {
				return eng.ResetQueueScale(ctx, q)
			}, nil
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 || n > storage.MaxQueueWorkers {
			return nil, fmt.Errorf("%w: queues scale: workers %q is not a whole number from 1 to %d, nor \"default\"", errUsage, args[0], storage.MaxQueueWorkers)
		}
		return func(ctx context.Context, eng *workflow.Engine) (*acidic.QueueControl, error) {
			return eng.ScaleQueue(ctx, q, n)
		}, nil
	})
)

// setupQueueControls is "queues controls": the controls of every known queue.
func setupQueueControls(e *env, _ *flag.FlagSet) func([]string) (func() error, error) {
	return func(args []string) (func() error, error) {
		if err := wantArgs("queues controls", args); err != nil {
			return nil, err
		}
		return func() error {
			eng, err := e.engine()
			if err != nil {
				return err
			}
			ctls, err := eng.QueueControls(e.ctx)
			if err != nil {
				return err
			}
			out := make([]QueueControlJSON, 0, len(ctls))
			for _, c := range ctls {
				out = append(out, queueControlJSON(c))
			}
			return e.printer().emit(out, func(t *textOut) {
				if len(ctls) == 0 {
					t.linef("no queue registered or controlled in %s", e.place())
					return
				}
				tb := t.table("QUEUE", "STATE", "WORKERS", "UPDATED")
				for _, c := range ctls {
					tb.row(c.Queue, controlStateText(c), workersText(c), c.UpdatedAt.Format(time.RFC3339))
				}
				tb.flush()
			})
		}, nil
	}
}

func controlStateText(c *acidic.QueueControl) string {
	if !c.Paused {
		return "active"
	}
	return "paused since " + timeText(c.PausedAt)
}

func workersText(c *acidic.QueueControl) string {
	if c.MaxWorkers == 0 {
		return "each node's own (MaxWorkers)"
	}
	return strconv.Itoa(c.MaxWorkers) + " per node"
}

// printQueueControl writes one queue's controls.
func printQueueControl(t *textOut, c *acidic.QueueControl) {
	t.field("queue", c.Queue)
	t.field("state", controlStateText(c))
	t.field("workers", workersText(c))
	t.field("updated", c.UpdatedAt.Format(time.RFC3339))
}
