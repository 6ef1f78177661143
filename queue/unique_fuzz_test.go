package queue

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// FuzzUniqueKey checks the key of a unique job on arbitrary arguments: it
// never panics (invalid JSON is ErrInvalid), it is deterministic, equal
// arguments written differently give one key, ArgKeys compares only the
// named keys (others, and the order of ArgKeys, do not matter), the kind
// counts, and a Period splits time into windows. Run it with
//
//	go test ./queue -run '^$' -fuzz FuzzUniqueKey
func FuzzUniqueKey(f *testing.F) {
	for _, s := range []struct {
		args, kind, argKey, extra string
	}{
		{`{"order_id":42,"reason":"awful"}`, "refund", "order_id", "I said awful"},
		{`{"order_id":42.0}`, "refund", "order_id", ""},
		{`{"order_id":4.2e1,"b":[1,2,{"c":null}]}`, "refund", "b", "x"},
		{`{"a":1,"a":2}`, "k", "a", "y"},
		{`[1,2,3]`, "k", "a", ""},
		{`"scalar"`, "k", "a", ""},
		{`null`, "k", "", ""},
		{`{}`, "k", "missing", "z"},
		{`{"s":"\u00e9\ud83d\ude00"}`, "", "s", "\x00"},
		{`{"n":1e400}`, "k", "n", ""},
		{`{`, "k", "a", ""},
		{`{"a":1} 2`, "k", "a", ""},
		{"", "k", "a", ""},
		{"{\"a\":\"\xff\"}", "k", "a", ""},
	} {
		f.Add([]byte(s.args), s.kind, s.argKey, s.extra)
	}
	now := time.Date(2030, 5, 1, 12, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, args []byte, kind, argKey, extra string) {
		// Keys of decoded JSON are valid UTF-8; so are the ArgKeys that
		// can name them.
		argKey = strings.ToValidUTF8(argKey, "\uFFFD")
		in := storage.JobInsert{Kind: kind, Queue: "q", Args: args}
		def := &UniqueOptions{}
		key, mask, err := def.uniqueKey(in, now)
		var doc any
		dec := json.NewDecoder(bytes.NewReader(args))
		dec.UseNumber()
		decErr := dec.Decode(&doc)
		if decErr == nil && dec.More() {
			decErr = errors.New("trailing data")
		}
		if !json.Valid(args) {
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("invalid args %q: key %x err %v, want ErrInvalid", args, key, err)
			}
			// Through the enqueue path too: a clear error, no panic.
			if _, err := (EnqueueParams{Kind: "k", Args: json.RawMessage(args), Opts: EnqueueOptions{Unique: def}}).toInsert(now); err == nil {
				t.Fatalf("toInsert accepted invalid args %q", args)
			}
			return
		}
		if err != nil {
			t.Fatalf("valid args %q: %v", args, err)
		}
		if decErr != nil {
			t.Fatalf("test bug: decode %q: %v", args, decErr)
		}
		if len(key) != 32 || mask != defaultMask() {
			t.Fatalf("key %x (len %d) mask %d", key, len(key), mask)
		}
		again, _, err := def.uniqueKey(in, now)
		if err != nil || !bytes.Equal(again, key) {
			t.Fatalf("not deterministic: %x then %x (%v)", key, again, err)
		}
		// The same value, written by encoding/json (sorted keys, no spaces).
		reenc, err := json.Marshal(doc)
		if err != nil {
			t.Fatalf("test bug: re-encode %q: %v", args, err)
		}
		variant := spaced(respell(reenc))
		if k, _, err := def.uniqueKey(storage.JobInsert{Kind: kind, Queue: "q", Args: variant}, now); err != nil || !bytes.Equal(k, key) {
			t.Fatalf("equal args %q and %q have different keys (%v)", args, variant, err)
		}
		// The kind counts by default.
		if k, _, _ := def.uniqueKey(storage.JobInsert{Kind: kind + "-other", Queue: "q", Args: args}, now); bytes.Equal(k, key) {
			t.Fatalf("kinds %q and %q share a key", kind, kind+"-other")
		}
		// A period: the same key within a window, another in the next.
		hourly := &UniqueOptions{Period: time.Hour}
		k1, _, _ := hourly.uniqueKey(in, now)
		k2, _, _ := hourly.uniqueKey(in, now.Add(29*time.Minute))
		k3, _, _ := hourly.uniqueKey(in, now.Add(time.Hour))
		if !bytes.Equal(k1, k2) || bytes.Equal(k1, k3) {
			t.Fatalf("period windows: %x %x %x", k1, k2, k3)
		}

		// ArgKeys: only the named keys count.
		byKey := &UniqueOptions{ArgKeys: []string{argKey}}
		picked, _, err := byKey.uniqueKey(in, now)
		obj, isObject := doc.(map[string]any)
		if !isObject {
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("ArgKeys on non-object args %q: err %v, want ErrInvalid", args, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("ArgKeys %q on %q: %v", argKey, args, err)
		}
		// Another document with the same value at argKey and other keys
		// added, changed or dropped.
		other := map[string]any{argKey + "\x00other": extra}
		if v, ok := obj[argKey]; ok {
			other[argKey] = v
		}
		for k := range obj {
			if k != argKey && len(k)%2 == 0 {
				other[k] = []any{extra, k}
			}
		}
		otherRaw, err := json.Marshal(other)
		if err != nil {
			t.Fatalf("test bug: %v", err)
		}
		k, _, err := byKey.uniqueKey(storage.JobInsert{Kind: kind, Queue: "q", Args: otherRaw}, now)
		if err != nil || !bytes.Equal(k, picked) {
			t.Fatalf("ArgKeys [%q]: %q and %q differ only in other keys but have different keys (%v)", argKey, args, otherRaw, err)
		}
		// The order of ArgKeys does not matter.
		two := &UniqueOptions{ArgKeys: []string{argKey, argKey + "2"}}
		owt := &UniqueOptions{ArgKeys: []string{argKey + "2", argKey}}
		ka, _, errA := two.uniqueKey(in, now)
		kb, _, errB := owt.uniqueKey(in, now)
		if errA != nil || errB != nil || !bytes.Equal(ka, kb) {
			t.Fatalf("ArgKeys order changed the key: %x vs %x (%v, %v)", ka, kb, errA, errB)
		}
		// Changing the value at argKey changes the key.
		changed := map[string]any{argKey: []any{"changed", obj[argKey]}}
		changedRaw, _ := json.Marshal(changed)
		if k, _, _ := byKey.uniqueKey(storage.JobInsert{Kind: kind, Queue: "q", Args: changedRaw}, now); bytes.Equal(k, picked) {
			t.Fatalf("ArgKeys [%q]: %q and %q have the same key", argKey, args, changedRaw)
		}
	})
}

// defaultMask is the states mask of UniqueOptions without States.
func defaultMask() acidic.JobStates {
	return acidic.NewJobStates(DefaultUniqueStates()...)
}

// respell writes the numbers of a JSON document without exponent with
// trailing zeros (42 -> 42.0, 1.5 -> 1.50): the same values.
func respell(raw []byte) []byte {
	var b bytes.Buffer
	inString, escaped, inNumber, hasExp, hasPoint := false, false, false, false, false
	endNumber := func() {
		if inNumber && !hasExp {
			if hasPoint {
				b.WriteByte('0')
			} else {
				b.WriteString(".0")
			}
		}
		inNumber, hasExp, hasPoint = false, false, false
	}
	for _, c := range raw {
		switch {
		case inString:
			if escaped {
				escaped = false
			} else if c == '\\' {
				escaped = true
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			endNumber()
			inString = true
		case c == '-' || c == '+' || (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E':
			if !inNumber && (c == '-' || (c >= '0' && c <= '9')) {
				inNumber = true
			}
			hasExp = hasExp || c == 'e' || c == 'E'
			hasPoint = hasPoint || c == '.'
		default:
			endNumber()
		}
		b.WriteByte(c)
	}
	endNumber()
	return b.Bytes()
}

// spaced adds insignificant whitespace around JSON punctuation outside
// strings.
func spaced(raw []byte) []byte {
	var b bytes.Buffer
	inString, escaped := false, false
	for _, c := range raw {
		switch {
		case inString:
			b.WriteByte(c)
			if escaped {
				escaped = false
			} else if c == '\\' {
				escaped = true
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
			b.WriteByte(c)
		case c == ',' || c == ':' || c == '{' || c == '[':
			b.WriteByte(c)
			b.WriteString(" \n\t")
		default:
			b.WriteByte(c)
		}
	}
	return b.Bytes()
}
