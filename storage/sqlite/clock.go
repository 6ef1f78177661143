package sqlite

import (
	"sync/atomic"
	"time"
)

// clock is the store's clock: SQLite has no now() of a transaction, so the
// driver passes the time into every statement. It is the machine's clock in
// microseconds since the Unix epoch (the columns' unit), made strictly
// increasing within the driver: two writes one after the other never share
// a time, also when the wall clock stands still or steps back, so
// updated_at and created_at order the writes of a process.
type clock struct{ last atomic.Int64 }

// now returns the time for one call, in microseconds.
func (c *clock) now() int64 {
	for {
		t := time.Now().UnixMicro()
		last := c.last.Load()
		if t <= last {
			t = last + 1
		}
		if c.last.CompareAndSwap(last, t) {
			return t
		}
	}
}

// timeOf turns a column's microseconds into a time.
func timeOf(us int64) time.Time { return time.UnixMicro(us) }

// micros turns a time into a column's microseconds; nil for the zero time.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// jsonTime is t as text in a JSON document (an error history's "at"), as
// encoding/json writes a time.
func jsonTime(us int64) string { return timeOf(us).UTC().Format(time.RFC3339Nano) }
