package queue

import (
	"errors"
	"fmt"
	"time"
)

// Snooze returns an error that tells the queue to run the job again after d
// without spending an attempt. Return it from a work function.
func Snooze(d time.Duration) error { return &snoozeError{delay: d} }

// Cancel returns an error that ends the job as cancelled, with no further
// attempts. reason is recorded in the job's error history; it may be nil.
func Cancel(reason error) error { return &cancelError{reason: reason} }

// Discard returns an error that ends the job as discarded at once, as if it
// had run out of attempts. reason is recorded; it may be nil.
func Discard(reason error) error { return &discardError{reason: reason} }

type snoozeError struct{ delay time.Duration }

func (e *snoozeError) Error() string { return fmt.Sprintf("queue: snooze for %s", e.delay) }

type cancelError struct{ reason error }

func (e *cancelError) Error() string {
	if e.reason == nil {
		return "queue: job cancelled"
	}
	return "queue: job cancelled: " + e.reason.Error()
}

func (e *cancelError) Unwrap() error { return e.reason }

type discardError struct{ reason error }

func (e *discardError) Error() string {
	if e.reason == nil {
		return "queue: job discarded"
	}
	return "queue: job discarded: " + e.reason.Error()
}

func (e *discardError) Unwrap() error { return e.reason }

// IsSnooze reports whether err asks for a snooze, and for how long.
func IsSnooze(err error) (time.Duration, bool) {
	var s *snoozeError
	if errors.As(err, &s) {
		return s.delay, true
	}
	return 0, false
}

// IsCancel reports whether err asks to cancel the job.
func IsCancel(err error) bool {
	var c *cancelError
	return errors.As(err, &c)
}

// IsDiscard reports whether err asks to discard the job.
func IsDiscard(err error) bool {
	var d *discardError
	return errors.As(err, &d)
}
