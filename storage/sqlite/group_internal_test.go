package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// openGroupDB opens a migrated database in a temporary file with opts,
// closed when the test ends.
func openGroupDB(t *testing.T, opts Options) *Driver {
	t.Helper()
	d, err := Open(context.Background(), filepath.Join(t.TempDir(), "group.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// holdWriter starts a write transaction (a bookkeeping one, or a step's)
// that holds the writer until release is closed; it returns once the
// transaction runs. done receives the write's result.
func holdWriter(ctx context.Context, d *Driver, bookkeeping bool) (release chan struct{}, done chan error) {
	held := make(chan struct{})
	release, done = make(chan struct{}), make(chan error, 1)
	go func() {
		done <- d.write(ctx, bookkeeping, func(q wq) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	return release, done
}

// TestGroupDurability: a transaction that commits with synchronous=FULL
// (a step's) and gets the writer after a bookkeeping one (a claim,
// synchronous=NORMAL) runs and commits with FULL, and both succeed. SQLite
// refuses to change synchronous inside a transaction, so the bookkeeping
// transaction's cannot take the step: it commits alone.
func TestGroupDurability(t *testing.T) {
	ctx := context.Background()
	d := openGroupDB(t, Options{Migrate: true})
	release, first := holdWriter(ctx, d, true)
	second := make(chan error, 1)
	var mode int
	go func() {
		second <- d.write(ctx, false, func(q wq) error {
			return d.wconn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode)
		})
	}()
	for d.waiting.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	close(release) // the bookkeeping transaction ends while the other waits
	if err := <-first; err != nil {
		t.Errorf("bookkeeping transaction: %v", err)
	}
	if err := <-second; err != nil {
		t.Errorf("FULL transaction: %v", err)
	}
	if mode != 2 {
		t.Errorf("the FULL transaction ran with synchronous = %d, want 2 (FULL)", mode)
	}
}

// TestGroupBookkeepingAlone: a bookkeeping transaction (a claim, a job's
// outcome) is never held back in a group: it commits and returns while the
// transaction that waited for the writer after it still runs. Its caller
// acts on it (the queue publishes the attempt's outcome) before anything
// reading its writes (the fetch of the job's next attempt) can return.
func TestGroupBookkeepingAlone(t *testing.T) {
	ctx := context.Background()
	d := openGroupDB(t, Options{Migrate: true, BusyTimeout: time.Second})
	for _, next := range []bool{true, false} { // the transaction waiting after it: bookkeeping, then a step's
		release, first := holdWriter(ctx, d, true)
		running, finish := make(chan struct{}), make(chan struct{})
		second := make(chan error, 1)
		go func() {
			second <- d.write(ctx, next, func(q wq) error {
				close(running)
				<-finish
				return nil
			})
		}()
		for d.queued.Load() < 1 { // the second waits for the writer
			time.Sleep(time.Millisecond)
		}
		close(release)
		<-running
		if err := <-first; err != nil { // returns while the second runs
			t.Errorf("next bookkeeping %v: first: %v", next, err)
		}
		close(finish)
		if err := <-second; err != nil {
			t.Errorf("next bookkeeping %v: second: %v", next, err)
		}
	}
}

// TestGroupBookkeepingEnds: a bookkeeping transaction that gets the writer
// while a group is open joins it as its last member: it commits the group,
// synced (synchronous=FULL), and returns with it; the transaction waiting
// after it begins a group of its own.
func TestGroupBookkeepingEnds(t *testing.T) {
	ctx := context.Background()
	d := openGroupDB(t, Options{Migrate: true})
	groups, members := d.groups.Load(), d.members.Load()
	release, a := holdWriter(ctx, d, false)
	var mode int
	b := make(chan error, 1)
	go func() {
		b <- d.write(ctx, true, func(q wq) error {
			return d.wconn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode)
		})
	}()
	for d.queued.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	c := make(chan error, 1)
	go func() { c <- d.write(ctx, false, func(q wq) error { return nil }) }()
	for d.waiting.Load() < 1 { // c, counted: a hands the group over (to b, first in line)
		time.Sleep(time.Millisecond)
	}
	close(release)
	for name, ch := range map[string]chan error{"a": a, "b": b, "c": c} {
		if err := <-ch; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if mode != 2 {
		t.Errorf("the bookkeeping transaction ran in the group with synchronous = %d, want 2 (FULL)", mode)
	}
	if g, m := d.groups.Load()-groups, d.members.Load()-members; g != 2 || m != 3 {
		t.Errorf("%d COMMITs for %d transactions, want 2 for 3 (a and b together, then c)", g, m)
	}
}
