package queue

import (
	"errors"
	"testing"
	"time"
)

// TestLastDueMatchesAWalk: the latest due period and the count of due
// periods are those a walk over every period finds, also past the walk's
// bound (a minutely schedule down for a month) and for @every schedules.
func TestLastDueMatchesAWalk(t *testing.T) {
	t.Parallel()
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		spec string
		gap  time.Duration
	}{
		{"* * * * *", 90 * time.Second},
		{"* * * * *", 30 * 24 * time.Hour},
		{"*/7 * * * *", 3 * time.Hour},
		{"0 9 * * 1-5", 40 * 24 * time.Hour},
		{"* * 1 * *", 45 * 24 * time.Hour},
		{"@every 1s", 3 * time.Hour},
		{"@every 1m30s", 100 * time.Hour},
	}
	for _, tc := range cases {
		s, err := parseSchedule(tc.spec, "Europe/Paris", base)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		first := s.first(base)
		now := first.Add(tc.gap)
		wantLast, wantCount := first, 1
		for n := s.following(first); !n.After(now); n = s.following(n) {
			wantLast, wantCount = n, wantCount+1
		}
		last, count := s.lastDue(first, now)
		if !last.Equal(wantLast) {
			t.Errorf("%s, %s down: last due %s, want %s", tc.spec, tc.gap, last, wantLast)
		}
		if want := min(wantCount, maxCountedPeriods); count != want {
			t.Errorf("%s, %s down: %d periods due, want %d", tc.spec, tc.gap, count, want)
		}
	}
}

// FuzzParseSchedule: no expression or zone makes the parser panic, and
// what it accepts fires after any time.
func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"* * * * *", "TZ=UTC", "CRON_TZ=", "TZ= ", "CRON_TZ=Europe/Paris 0 9 * * *", "@every 1s", "@every", "@", "1-", "*/0 * * * *", "0 0 31 2 *", "5-1 * * * *", "@every 9999999h"} {
		f.Add(s, "")
		f.Add(s, "America/New_York")
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec, tz string) {
		s, err := parseSchedule(spec, tz, now)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("parseSchedule(%q, %q) = %v, not ErrInvalid", spec, tz, err)
			}
			return
		}
		if n := s.first(now); !n.After(now) {
			t.Fatalf("parseSchedule(%q, %q): first period %s is not after %s", spec, tz, n, now)
		}
	})
}
