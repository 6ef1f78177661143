package run_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic/run"
)

// FuzzByArgsKey checks the idempotency key run.ByArgs derives: documents
// that are equal as JSON values (other key order, whitespace, string
// escapes, number spellings such as 1.50 and 15e-1) give one key; Canonical
// is idempotent and keeps the value; invalid input is an error matching
// run.ErrKey, never a panic. Run it with
//
//	go test ./run -run '^$' -fuzz FuzzByArgsKey
func FuzzByArgsKey(f *testing.F) {
	for _, seed := range []struct {
		doc  string
		seed uint64
	}{
		{`{"order":42,"amount":"10.00","items":[{"sku":"a","qty":1},{"qty":2,"sku":"b"}]}`, 1},
		{`{"b":1,"a":{"d":[true,false,null],"c":"é\n\u2028"}}`, 2},
		{`[1, 1.0, 1.50, 15e-1, -0, 0.0, 1e2, 100, 12345678901234567890123]`, 3},
		{`"just a string with \"quotes\" and \\ slashes"`, 4},
		{`{"":"empty key","a":{"":{}}}`, 5},
		{`{"a":1,"a":2}`, 6},
		{`{"big":1e400,"small":1e-400,"neg":-2.5E+3}`, 7},
		// Found by this fuzzer: an exponent beyond int64 is left as written,
		// so 10e10000000000000000000 and 10.0e10000000000000000000 differ.
		{`{"n":10e10000000000000000000}`, 14},
		{`null`, 8},
		{`{"s":"\ud83d\ude00 and a lone \ud800"}`, 9},
		{"{\"bad utf8\":\"\xff\xfe\"}", 10},
		{`{`, 11},
		{`{"a":1} trailing`, 12},
		{``, 13},
	} {
		f.Add([]byte(seed.doc), seed.seed)
	}
	strategy := run.ByArgs()
	f.Fuzz(func(t *testing.T, doc []byte, seed uint64) {
		key, err := strategy.Key("wf", doc, uuid.Nil)
		if _, cerr := run.Canonical(doc); json.Valid(doc) && errors.Is(cerr, run.ErrArgs) {
			// Valid JSON that Canonical refuses: a number out of range.
			if !errors.Is(err, run.ErrKey) || !strings.Contains(cerr.Error(), "out of range") {
				t.Fatalf("valid JSON %q refused by Canonical (%v) must be out of range, with a key error (%v)", doc, cerr, err)
			}
			return
		}
		if !json.Valid(doc) {
			if err == nil || !errors.Is(err, run.ErrKey) {
				t.Fatalf("ByArgs key of invalid JSON %q: key %q err %v, want an error matching run.ErrKey", doc, key, err)
			}
			if _, err := run.Canonical(doc); !errors.Is(err, run.ErrArgs) {
				t.Fatalf("Canonical of invalid JSON %q: err %v, want run.ErrArgs", doc, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("ByArgs key of valid JSON %q: %v", doc, err)
		}
		if !strings.HasPrefix(key, "wf:args:") {
			t.Fatalf("key %q does not name its workflow", key)
		}
		if other, err := strategy.Key("wf2", doc, uuid.Nil); err != nil || other == key {
			t.Fatalf("two workflows share the key %q (err %v)", key, err)
		}

		c, err := run.Canonical(doc)
		if err != nil {
			t.Fatalf("Canonical(%q): %v", doc, err)
		}
		if !json.Valid(c) {
			t.Fatalf("Canonical(%q) = %q is not valid JSON", doc, c)
		}
		cc, err := run.Canonical(c)
		if err != nil || !bytes.Equal(cc, c) {
			t.Fatalf("Canonical is not idempotent: %q -> %q -> %q (%v)", doc, c, cc, err)
		}
		if k, err := strategy.Key("wf", c, uuid.Nil); err != nil || k != key {
			t.Fatalf("the canonical form %q has key %q, the document %q has %q (%v)", c, k, doc, key, err)
		}

		// A document equal as a value, written differently.
		var v any
		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("decode valid JSON %q: %v", doc, err)
		}
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		var b strings.Builder
		writeVariant(&b, v, rng)
		variant := []byte(b.String())
		if !json.Valid(variant) {
			t.Fatalf("test bug: variant %q of %q is not valid JSON", variant, doc)
		}
		vk, err := strategy.Key("wf", variant, uuid.Nil)
		if err != nil {
			t.Fatalf("ByArgs key of %q: %v", variant, err)
		}
		if vk != key {
			cv, _ := run.Canonical(variant)
			t.Fatalf("equal documents have different keys:\n  %q -> canonical %q\n  %q -> canonical %q", doc, c, variant, cv)
		}
		if same, err := run.SameArgs(doc, variant); err != nil || !same {
			t.Fatalf("SameArgs(%q, %q) = %v, %v; want true", doc, variant, same, err)
		}
	})
}

// writeVariant writes v as JSON equal to it as a value but spelled
// differently: shuffled object keys, random whitespace, some characters
// escaped as \uXXXX, numbers in other notations.
func writeVariant(b *strings.Builder, v any, rng *rand.Rand) {
	space := func() {
		for range rng.IntN(3) {
			b.WriteByte(" \t\n\r"[rng.IntN(4)])
		}
	}
	space()
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		fmt.Fprint(b, x)
	case json.Number:
		b.WriteString(numberVariant(string(x), rng))
	case string:
		writeStringVariant(b, x, rng)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeVariant(b, e, rng)
		}
		space()
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			space()
			writeStringVariant(b, k, rng)
			space()
			b.WriteByte(':')
			writeVariant(b, x[k], rng)
		}
		space()
		b.WriteByte('}')
	}
	space()
}

// writeStringVariant writes s as a JSON string, escaping some runes as
// \uXXXX (with surrogate pairs outside the BMP).
func writeStringVariant(b *strings.Builder, s string, rng *rand.Rand) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		case r == '"' || r == '\\' || r < 0x20 || rng.IntN(4) == 0:
			if r > 0xffff {
				r -= 0x10000
				fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			} else {
				fmt.Fprintf(b, `\u%04X`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// numberVariant spells a JSON number differently with the same value:
// trailing zeros in the fraction, an explicit exponent of zero, or the
// decimal point moved left with a matching exponent.
func numberVariant(s string, rng *rand.Rand) string {
	if strings.ContainsAny(s, "eE") {
		mantissa, exp, _ := strings.Cut(strings.ToLower(s), "e")
		if !strings.Contains(mantissa, ".") {
			mantissa += "."
		} else if rng.IntN(2) == 0 {
			return mantissa + "0E" + exp
		}
		return mantissa + "0e" + exp
	}
	switch rng.IntN(4) {
	case 0:
		return s
	case 1:
		if strings.Contains(s, ".") {
			return s + "00"
		}
		return s + ".0"
	case 2:
		return s + "e0"
	default:
		// 123.45 -> 12.345e1
		sign := ""
		if strings.HasPrefix(s, "-") {
			sign, s = "-", s[1:]
		}
		intPart, frac, _ := strings.Cut(s, ".")
		if len(intPart) < 2 {
			return sign + s + "E+0"
		}
		return sign + intPart[:len(intPart)-1] + "." + intPart[len(intPart)-1:] + frac + "e1"
	}
}

// TestCanonicalExtremeExponents pins what FuzzByArgsKey found: numbers with
// exponents far beyond what PostgreSQL's jsonb can hold are rejected with
// ErrArgs, instead of being left unnormalised or wrapping around to another
// value.
func TestCanonicalExtremeExponents(t *testing.T) {
	for _, doc := range []string{
		`1e10000000000000000000`, `[1.0e10000000000000000000]`,
		`0.5e-9223372036854775808`, `5e9223372036854775807`, `1e2000000`,
	} {
		if _, err := run.Canonical([]byte(doc)); !errors.Is(err, run.ErrArgs) {
			t.Errorf("Canonical(%s): %v, want run.ErrArgs", doc, err)
		}
		if _, err := run.SameArgs([]byte(doc), []byte(`1`)); !errors.Is(err, run.ErrArgs) {
			t.Errorf("SameArgs(%s, 1): %v, want run.ErrArgs", doc, err)
		}
	}
	// Large but representable exponents are still normalised.
	same, err := run.SameArgs([]byte(`1e300`), []byte(`10e299`))
	if err != nil || !same {
		t.Errorf("SameArgs(1e300, 10e299) = %v, %v; want true", same, err)
	}
}
