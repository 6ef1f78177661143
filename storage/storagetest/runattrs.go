package storagetest

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/acidic-go/acidic"
)

// RunInsert stores the run's initial persisted state (Attrs), JSON null
// when none is given, refuses state the storage cannot hold, and leaves an
// existing run's state alone.
func testRunInsertAttrs(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	plain := insertRun(ctx, t, drv, "plain")
	if string(plain.Attrs) != "null" {
		t.Errorf("run without initial state: attrs %s, want null", plain.Attrs)
	}
	in := runInsert("stateful")
	in.Attrs = json.RawMessage(`{"collection":[1,2,3,4,5]}`)
	r := insertRunWith(ctx, t, drv, in)
	if !jsonEqual(t, r.Attrs, in.Attrs) {
		t.Errorf("attrs %s, want %s", r.Attrs, in.Attrs)
	}
	again := runInsert("stateful")
	again.Attrs = json.RawMessage(`{"collection":[]}`)
	got, created, err := drv.RunInsert(ctx, again)
	if err != nil || created || got.ID != r.ID || !jsonEqual(t, got.Attrs, in.Attrs) {
		t.Errorf("insert of an existing key = %+v, created %v, %v; want the run with its state untouched", got, created, err)
	}
	for _, bad := range []string{`{"a":`, "{\"a\":\"\\u0000\"}"} {
		in := runInsert("bad")
		in.Attrs = json.RawMessage(bad)
		if _, _, err := drv.RunInsert(ctx, in); !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("RunInsert with attrs %q = %v, want ErrInvalid", bad, err)
		}
	}
}
