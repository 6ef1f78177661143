package queue

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// BackoffFunc returns how long to wait before the next attempt of a job whose
// attempt number attempt (from 1) failed with err.
type BackoffFunc func(attempt int, err error) time.Duration

// DefaultBackoff waits about 1s after the first failure and doubles each time
// (±20% jitter), up to 1h: 1s, 2s, 4s, … It uses cenkalti/backoff, the same
// policy type that spaces out transaction retries.
func DefaultBackoff(attempt int, _ error) time.Duration {
	return ExponentialBackoff(time.Second, time.Hour)(attempt, nil)
}

// ExponentialBackoff returns a BackoffFunc that waits initial after the first
// failure, doubling each attempt with ±20% jitter, never more than max.
func ExponentialBackoff(initial, max time.Duration) BackoffFunc {
	return func(attempt int, _ error) time.Duration {
		b := &backoff.ExponentialBackOff{
			InitialInterval:     initial,
			RandomizationFactor: 0.2,
			Multiplier:          2,
			MaxInterval:         max,
			MaxElapsedTime:      0,
			Stop:                backoff.Stop,
			Clock:               backoff.SystemClock,
		}
		b.Reset()
		d := b.NextBackOff()
		for i := 1; i < attempt && i < 64; i++ {
			d = b.NextBackOff()
		}
		return d
	}
}
