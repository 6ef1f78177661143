package run_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic/run"
)

func TestCanonical(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, want string
	}{
		{"sorted keys", `{"b":1,"a":2,"c":3}`, `{"a":2,"b":1,"c":3}`},
		{"whitespace", " \n\t{ \"a\" :\t[ 1 , 2 ] ,\r\n \"b\" : null }\n ", `{"a":[1,2],"b":null}`},
		{"nested objects sorted at every level", `{"z":{"y":{"b":1,"a":2},"x":[{"d":1,"c":2}]},"a":true}`,
			`{"a":true,"z":{"x":[{"c":2,"d":1}],"y":{"a":2,"b":1}}}`},
		{"array order kept", `[3,1,2]`, `[3,1,2]`},
		{"1.0 is the number 1, as in jsonb", `{"n":1.0}`, `{"n":1}`},
		{"1 kept as written", `{"n":1}`, `{"n":1}`},
		{"numbers as plain decimals, as jsonb keeps them", `[1e2,1E-7,-0,0.10]`, `[100,0.0000001,0,0.1]`},
		{"big int preserved", `{"id":12345678901234567890123}`, `{"id":12345678901234567890123}`},
		{"int beyond float64 precision preserved", `9007199254740993`, `9007199254740993`},
		{"strings kept, whitespace inside strings kept", `{"s":"a  b\tc"}`, `{"s":"a  b\tc"}`},
		{"scalar", `  "x"  `, `"x"`},
		{"empty object", `{ }`, `{}`},
	}
	for _, c := range cases {
		got, err := run.Canonical(json.RawMessage(c.in))
		if err != nil {
			t.Errorf("%s: Canonical(%q): %v", c.name, c.in, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("%s: Canonical(%q) = %s, want %s", c.name, c.in, got, c.want)
		}
	}
}

func TestCanonicalRejectsInvalidJSON(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		``,
		`   `,
		`{`,
		`{"a":}`,
		`{'a':1}`,
		`[1,2,]`,
		`nul`,
		`{"a":1} {"b":2}`, // two values
		`{"a":1} x`,       // trailing garbage
		`1 2`,
		`"a" "b"`,
		`{"a":1}}`, // trailing closing brace
		`[1]]`,     // trailing closing bracket
		`{"a":1}]`,
		`0}`,
	} {
		got, err := run.Canonical(json.RawMessage(in))
		if err == nil {
			t.Errorf("Canonical(%q) = %s, want an error", in, got)
			continue
		}
		if !errors.Is(err, run.ErrArgs) {
			t.Errorf("Canonical(%q): error %v does not match run.ErrArgs", in, err)
		}
	}
}

func TestSameArgs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		a, b string
		same bool
	}{
		{`{"a":1,"b":[1,2]}`, ` { "b" : [1, 2], "a" : 1 } `, true},
		{`{"a":{"y":1,"x":2}}`, `{"a":{"x":2,"y":1}}`, true},
		{`{"a":1}`, `{"a":2}`, false},
		{`{"a":1}`, `{"a":1,"b":null}`, false},
		{`[1,2]`, `[2,1]`, false},
		{`{"a":"1"}`, `{"a":1}`, false},
		{`{"a":1.0}`, `{"a":1}`, true}, // numbers compare as values, as in jsonb
		{`null`, `null`, true},
	}
	for _, c := range cases {
		same, err := run.SameArgs(json.RawMessage(c.a), json.RawMessage(c.b))
		if err != nil {
			t.Errorf("SameArgs(%s, %s): %v", c.a, c.b, err)
			continue
		}
		if same != c.same {
			t.Errorf("SameArgs(%s, %s) = %v, want %v", c.a, c.b, same, c.same)
		}
	}
	if _, err := run.SameArgs(json.RawMessage(`{"a":1}`), json.RawMessage(`{`)); !errors.Is(err, run.ErrArgs) {
		t.Errorf("SameArgs with invalid second document: err %v, want run.ErrArgs", err)
	}
	if _, err := run.SameArgs(json.RawMessage(`nope`), json.RawMessage(`{}`)); !errors.Is(err, run.ErrArgs) {
		t.Errorf("SameArgs with invalid first document: err %v, want run.ErrArgs", err)
	}
}

func mustKey(t *testing.T, s run.Strategy, workflow, args string, id uuid.UUID) string {
	t.Helper()
	k, err := s.Key(workflow, json.RawMessage(args), id)
	if err != nil {
		t.Fatalf("%s.Key(%s, %s): %v", s, workflow, args, err)
	}
	if k == "" {
		t.Fatalf("%s.Key(%s, %s) is empty", s, workflow, args)
	}
	return k
}

func TestByArgs(t *testing.T) {
	t.Parallel()
	s := run.ByArgs()
	if s.String() != "by-args" {
		t.Errorf("String() = %q", s.String())
	}
	k1 := mustKey(t, s, "pay", `{"order":"o1","amount":100,"meta":{"b":1,"a":2}}`, uuid.New())
	k2 := mustKey(t, s, "pay", ` {"meta":{"a":2,"b":1}, "amount":100, "order":"o1"}`, uuid.New())
	if k1 != k2 {
		t.Errorf("reordered keys and whitespace gave different keys: %q vs %q", k1, k2)
	}
	if k3 := mustKey(t, s, "pay", `{"order":"o1","amount":101,"meta":{"b":1,"a":2}}`, uuid.New()); k3 == k1 {
		t.Errorf("different amount gave the same key %q", k3)
	}
	if k4 := mustKey(t, s, "pay", `{"order":"o2","amount":100,"meta":{"b":1,"a":2}}`, uuid.New()); k4 == k1 {
		t.Errorf("different order gave the same key %q", k4)
	}
	if k5 := mustKey(t, s, "refund", `{"order":"o1","amount":100,"meta":{"b":1,"a":2}}`, uuid.New()); k5 == k1 {
		t.Errorf("different workflow gave the same key %q", k5)
	}
	if !strings.HasPrefix(k1, "pay:") {
		t.Errorf("key %q does not name the workflow", k1)
	}
	if _, err := s.Key("pay", json.RawMessage(`{"a":`), uuid.New()); !errors.Is(err, run.ErrKey) || !errors.Is(err, run.ErrArgs) {
		t.Errorf("invalid args: err %v, want run.ErrKey and run.ErrArgs", err)
	}
}

func TestByJobID(t *testing.T) {
	t.Parallel()
	s := run.ByJobID()
	if s.String() != "by-job-id" {
		t.Errorf("String() = %q", s.String())
	}
	id1, id2 := uuid.New(), uuid.New()
	k1 := mustKey(t, s, "pay", `{"a":1}`, id1)
	k2 := mustKey(t, s, "pay", `{"a":1}`, id2)
	if k1 == k2 {
		t.Errorf("two run ids with equal args share key %q", k1)
	}
	if k1again := mustKey(t, s, "pay", `{"a":1}`, id1); k1again != k1 {
		t.Errorf("same run id: key %q then %q", k1, k1again)
	}
	if !strings.Contains(k1, id1.String()) {
		t.Errorf("key %q does not contain the run id %s", k1, id1)
	}
}

func TestZeroStrategyIsByJobID(t *testing.T) {
	t.Parallel()
	var zero run.Strategy
	if zero.String() != "by-job-id" {
		t.Errorf("zero Strategy String() = %q, want by-job-id", zero.String())
	}
	id := uuid.New()
	want := mustKey(t, run.ByJobID(), "pay", `{"a":1}`, id)
	if got := mustKey(t, zero, "pay", `{"a":1}`, id); got != want {
		t.Errorf("zero Strategy key %q, ByJobID key %q", got, want)
	}
	if other := mustKey(t, zero, "pay", `{"a":1}`, uuid.New()); other == want {
		t.Errorf("zero Strategy gave the same key for two run ids")
	}
}

type orderArgs struct {
	OrderID string `json:"order_id"`
	Amount  int    `json:"amount"`
}

func TestByCustom(t *testing.T) {
	t.Parallel()
	s := run.By(func(a orderArgs) (string, error) { return a.OrderID, nil })
	if s.String() != "custom" {
		t.Errorf("String() = %q", s.String())
	}
	k := mustKey(t, s, "pay", `{"order_id":"o-1","amount":5}`, uuid.New())
	if k != "pay:o-1" {
		t.Errorf("key %q, want pay:o-1", k)
	}
	// Only the chosen field matters.
	if k2 := mustKey(t, s, "pay", `{"amount":7,"order_id":"o-1"}`, uuid.New()); k2 != k {
		t.Errorf("same order id gave %q and %q", k, k2)
	}
	// The workflow's name is part of the key.
	if k3 := mustKey(t, s, "refund", `{"order_id":"o-1"}`, uuid.New()); k3 == k || k3 != "refund:o-1" {
		t.Errorf("other workflow: key %q", k3)
	}

	boom := errors.New("boom")
	failing := run.By(func(orderArgs) (string, error) { return "", boom })
	if _, err := failing.Key("pay", json.RawMessage(`{}`), uuid.New()); !errors.Is(err, run.ErrKey) || !errors.Is(err, boom) {
		t.Errorf("failing key func: err %v, want run.ErrKey wrapping boom", err)
	}
	empty := run.By(func(orderArgs) (string, error) { return "", nil })
	if k, err := empty.Key("pay", json.RawMessage(`{}`), uuid.New()); !errors.Is(err, run.ErrKey) {
		t.Errorf("empty key: key %q err %v, want run.ErrKey", k, err)
	}
	// Arguments that do not decode into the key function's type.
	if k, err := s.Key("pay", json.RawMessage(`{"order_id":5}`), uuid.New()); !errors.Is(err, run.ErrKey) {
		t.Errorf("undecodable args: key %q err %v, want run.ErrKey", k, err)
	}
}

// FuzzCanonical checks that Canonical is idempotent, keeps the value, and
// accepts exactly the documents encoding/json calls valid.
func FuzzCanonical(f *testing.F) {
	for _, seed := range []string{
		`{"b":1,"a":2}`,
		` [1, 2.50, -0, 1e3, "x", null, true, {"z":{"y":[]}}] `,
		`12345678901234567890123`,
		`{"s":"<&>\u2028 é \ud83d\ude00"}`,
		`{"a":1,"a":2}`,
		`"\u0000"`,
		`{`,
		`{"a":1} 2`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := run.Canonical(json.RawMessage(in))
		if valid := json.Valid(in); valid != (err == nil) {
			t.Fatalf("Canonical(%q): err %v, but json.Valid = %v", in, err, valid)
		}
		if err != nil {
			if !errors.Is(err, run.ErrArgs) {
				t.Fatalf("Canonical(%q): error %v does not match run.ErrArgs", in, err)
			}
			return
		}
		if !json.Valid(c) {
			t.Fatalf("Canonical(%q) = %q is not valid JSON", in, c)
		}
		cc, err := run.Canonical(c)
		if err != nil {
			t.Fatalf("Canonical(Canonical(%q)) = error %v", in, err)
		}
		if string(cc) != string(c) {
			t.Fatalf("not idempotent: Canonical(%q) = %q, then %q", in, c, cc)
		}
		same, err := run.SameArgs(in, c)
		if err != nil || !same {
			t.Fatalf("SameArgs(%q, Canonical = %q) = %v, %v", in, c, same, err)
		}
	})
}
