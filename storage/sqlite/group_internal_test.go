package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestGroupDurability: a transaction that commits with synchronous=FULL
// (a step's) and is handed the writer by a bookkeeping one (a claim,
// synchronous=NORMAL) runs and commits with FULL, and both succeed. SQLite
// refuses to change synchronous inside a transaction, so the group the
// bookkeeping transaction began cannot take the step: it commits first.
func TestGroupDurability(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "group.db"), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close() }()
	held, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- d.write(ctx, true, func(q wq) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
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
