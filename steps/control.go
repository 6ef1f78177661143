package steps

import (
	"errors"
	"fmt"
	"time"
)

// Control is a step result that is not a failure. Steps return it as an
// error value: return steps.Halt().
type Control struct {
	kind   ControlKind
	delay  time.Duration
	reason error
}

// ControlKind says what a Control asks for.
type ControlKind int

// Control kinds.
const (
	// KindHalt: commit the step, then stop the run without error. The run
	// rests in state halted at the next step until it is retried.
	KindHalt ControlKind = iota + 1
	// KindRepeat: commit the step, then run the same step again at once.
	KindRepeat
	// KindSnooze: commit the step, then run the same step again after a delay,
	// without spending an attempt.
	KindSnooze
	// KindCancel: roll the step back and cancel the run.
	KindCancel
)

func (c *Control) Error() string {
	switch c.kind {
	case KindHalt:
		return "steps: halt"
	case KindRepeat:
		return "steps: repeat"
	case KindSnooze:
		return fmt.Sprintf("steps: snooze %s", c.delay)
	case KindCancel:
		if c.reason != nil {
			return "steps: cancel: " + c.reason.Error()
		}
		return "steps: cancel"
	}
	return "steps: unknown control"
}

// Unwrap returns a Cancel's reason.
func (c *Control) Unwrap() error { return c.reason }

// Kind says what the control asks for.
func (c *Control) Kind() ControlKind { return c.kind }

// Delay is a Snooze's delay.
func (c *Control) Delay() time.Duration { return c.delay }

// Reason is a Cancel's reason (may be nil).
func (c *Control) Reason() error { return c.reason }

// Halt commits the step and stops the run without error: the run rests in
// state halted, at the next step, and no job works it until it is retried
// (workflow.Engine.Retry resumes it there) or cancelled.
func Halt() error { return &Control{kind: KindHalt} }

// Repeat commits the step and runs it again at once (for work done in
// chunks, each chunk in its own transaction).
func Repeat() error { return &Control{kind: KindRepeat} }

// Snooze commits the step and runs it again after d without spending an
// attempt (for polling an outside system).
func Snooze(d time.Duration) error { return &Control{kind: KindSnooze, delay: d} }

// Cancel rolls the step back and cancels the run, recording reason. Finish
// callbacks run.
func Cancel(reason error) error { return &Control{kind: KindCancel, reason: reason} }

// AsControl returns the Control in err's chain, if any.
func AsControl(err error) (*Control, bool) {
	var c *Control
	if errors.As(err, &c) {
		return c, true
	}
	return nil, false
}
