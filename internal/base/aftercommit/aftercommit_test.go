package aftercommit_test

import (
	"context"
	"slices"
	"testing"

	"github.com/acidic-go/acidic/internal/base/aftercommit"
)

func TestDoWaitsForRunInOrder(t *testing.T) {
	var got []int
	ctx, l := aftercommit.With(context.Background())
	aftercommit.Do(ctx, func() { got = append(got, 1) })
	aftercommit.Do(ctx, func() { got = append(got, 2) })
	if len(got) != 0 {
		t.Fatalf("ran before Run: %v", got)
	}
	l.Run()
	if !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("Run ran %v, want [1 2]", got)
	}
	l.Run()
	if !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("a second Run ran again: %v", got)
	}
	aftercommit.Do(ctx, func() { got = append(got, 3) })
	if !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("Do after Run: %v, want it run at once", got)
	}
}

func TestDoWithoutListRunsAtOnce(t *testing.T) {
	ran := false
	aftercommit.Do(context.Background(), func() { ran = true })
	if !ran {
		t.Fatal("Do without a list did not run its function")
	}
	var l *aftercommit.List
	l.Run() // nil-safe
}

// Each attempt of a retried transaction gets its own list: what the attempt
// that rolled back added never runs.
func TestEachAttemptHasItsOwnList(t *testing.T) {
	var got []string
	var last *aftercommit.List
	for _, attempt := range []string{"rolled back", "committed"} {
		ctx, l := aftercommit.With(context.Background())
		last = l
		aftercommit.Do(ctx, func() { got = append(got, attempt) })
	}
	last.Run()
	if !slices.Equal(got, []string{"committed"}) {
		t.Fatalf("ran %v, want only the committed attempt's", got)
	}
}
