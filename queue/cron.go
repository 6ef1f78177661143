package queue

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/robfig/cron/v3"

	"github.com/acidic-go/acidic/storage"
)

// cronParser reads standard five-field expressions and descriptors; a
// seconds field is not accepted.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// farFuture is the next run of a schedule that has no period left within
// the parser's reach (five years): the latest time the storage holds.
var farFuture = time.Date(storage.MaxYear, 12, 31, 0, 0, 0, 0, time.UTC)

// schedule is a parsed cron expression in its time zone.
type schedule struct {
	spec  string // without a CRON_TZ= prefix
	zone  string // IANA name, UTC by default
	loc   *time.Location
	cron  cron.Schedule
	every time.Duration // the period of an @every schedule, else 0
}

// parseSchedule reads spec in zone tz (or the zone its CRON_TZ= prefix
// names). now is used to check that the schedule fires at all.
func parseSchedule(spec, tz string, now time.Time) (s schedule, err error) {
	s.spec = strings.TrimSpace(spec)
	if s.spec == "" {
		return s, specError("empty Spec")
	}
	for _, prefix := range []string{"CRON_TZ=", "TZ="} {
		rest, ok := strings.CutPrefix(s.spec, prefix)
		if !ok {
			continue
		}
		i := strings.IndexFunc(rest, unicode.IsSpace)
		if i < 0 {
			return s, specError(fmt.Sprintf("%q has a time zone but no expression", spec))
		}
		zone := rest[:i]
		if tz != "" && tz != zone {
			return s, specError(fmt.Sprintf("%q names time zone %q but TimeZone is %q", spec, zone, tz))
		}
		tz, s.spec = zone, strings.TrimSpace(rest[i:])
		break
	}
	if strings.HasPrefix(s.spec, "TZ=") || strings.HasPrefix(s.spec, "CRON_TZ=") {
		return s, specError(fmt.Sprintf("%q names a time zone twice", spec))
	}
	if tz == "" {
		tz = "UTC"
	}
	if tz == "Local" {
		return s, fmt.Errorf("%w: %w: %q differs from node to node; name the zone (Europe/Paris)", ErrUnknownTimeZone, ErrInvalid, tz)
	}
	if err := storage.CheckName("time zone", tz); err != nil {
		return s, fmt.Errorf("%w: %w: %w", ErrUnknownTimeZone, ErrInvalid, err)
	}
	if s.loc, err = time.LoadLocation(tz); err != nil {
		return s, fmt.Errorf("%w: %w: %q: %w", ErrUnknownTimeZone, ErrInvalid, tz, err)
	}
	s.zone = tz
	if err := storage.CheckName("spec", s.spec); err != nil {
		return s, fmt.Errorf("%w: %w: %w", ErrInvalidSpec, ErrInvalid, err)
	}
	if s.cron, err = parseCron(s.spec); err != nil {
		return s, specError(fmt.Sprintf("%q: %v", s.spec, err))
	}
	switch c := s.cron.(type) {
	case *cron.SpecSchedule:
		c.Location = s.loc
		if c.Next(now).IsZero() {
			return s, specError(fmt.Sprintf("%q never fires", s.spec))
		}
	case cron.ConstantDelaySchedule:
		// The parser rounds a period below a second up and drops fractions
		// of a second; refuse instead, so the period is what was written.
		d, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(s.spec, "@every")))
		if err != nil || d < time.Second || d%time.Second != 0 {
			return s, specError(fmt.Sprintf("%q: @every takes a whole number of seconds, at least 1s", s.spec))
		}
		s.every = c.Delay
	default:
		return s, specError(fmt.Sprintf("%q: unsupported schedule", s.spec))
	}
	return s, nil
}

// parseCron parses with robfig/cron, which can panic on some malformed
// input (a bare "TZ=" prefix, for one): a panic is a parse error.
func parseCron(spec string) (sched cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("malformed: %v", r)
		}
	}()
	return cronParser.Parse(spec)
}

func specError(problem string) error {
	return fmt.Errorf("%w: %w: %s", ErrInvalidSpec, ErrInvalid, problem)
}

// first returns the first period after t, where a new schedule starts;
// farFuture when there is none within five years.
func (s schedule) first(t time.Time) time.Time {
	n := s.cron.Next(t)
	if n.IsZero() {
		return farFuture
	}
	return n
}

// following returns the period after period p: p plus the period of an
// @every schedule (whose periods count from its first), or the first
// period after p of a cron expression.
func (s schedule) following(p time.Time) time.Time {
	if s.every > 0 {
		return p.Add(s.every)
	}
	return s.first(p)
}

// maxCountedPeriods bounds the walk over missed periods: past it, the
// latest due period is searched for instead, and the count stops there.
const maxCountedPeriods = 10000

// lastDue returns the latest period at or before now of a schedule whose
// next period is first (at or before now), and how many periods from first
// to it are due (at least 1; at most maxCountedPeriods when many more are).
func (s schedule) lastDue(first, now time.Time) (time.Time, int) {
	if s.every > 0 {
		// Periods are first, first+every, ...: no walk needed.
		k := int64(now.Sub(first) / s.every)
		count := k + 1
		if count > maxCountedPeriods {
			count = maxCountedPeriods
		}
		return first.Add(time.Duration(k) * s.every), int(count)
	}
	last, count := first, 1
	for count < maxCountedPeriods {
		n := s.cron.Next(last)
		if n.IsZero() || n.After(now) {
			return last, count
		}
		last, count = n, count+1
	}
	// Very many periods were missed (a minutely schedule down for a week):
	// find the latest one from now backwards. Every period of a cron
	// expression is the first after some instant before it, so a window
	// that holds one period finds the latest after a short walk.
	for w := time.Minute; now.Add(-w).After(last); w *= 2 {
		n := s.cron.Next(now.Add(-w))
		if n.IsZero() || n.After(now) {
			continue
		}
		for {
			m := s.cron.Next(n)
			if m.IsZero() || m.After(now) {
				return n, count
			}
			n = m
		}
	}
	for {
		n := s.cron.Next(last)
		if n.IsZero() || n.After(now) {
			return last, count
		}
		last = n
	}
}
