package canonical_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/acidic-go/acidic/internal/base/canonical"
)

func TestNumber(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"0": "0", "-0": "0", "0.000": "0", "0e10": "0",
		"100": "100", "1e2": "100", "100.00": "100", "1E+2": "100", "10e1": "100",
		"1e-7": "0.0000001", "1e-07": "0.0000001", "0.0000001": "0.0000001",
		"1e21": "1000000000000000000000", "1.5": "1.5", "1.50": "1.5", "15e-1": "1.5",
		"-2.50e1": "-25", "123456789012345678901234567890": "123456789012345678901234567890",
		"0.1": "0.1", "-0.001": "-0.001", "12.345e2": "1234.5",
	}
	for in, want := range cases {
		if got, err := canonical.Number(json.Number(in)); err != nil || string(got) != want {
			t.Errorf("Number(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
}

func TestJSON(t *testing.T) {
	t.Parallel()
	got, err := canonical.JSON([]byte(` { "b" : [1e2, {"d": 1.0, "c": null}], "a": "x" } `))
	if err != nil || string(got) != `{"a":"x","b":[100,{"c":null,"d":1}]}` {
		t.Fatalf("JSON = %s, %v", got, err)
	}
	for _, bad := range []string{``, `{`, `{"a":1}}`, `[1]]`, `1 2`, `{"a":1} x`, `1e9999999`, `[0.5e-9223372036854775808]`} {
		if _, err := canonical.JSON([]byte(bad)); !errors.Is(err, canonical.ErrInvalid) {
			t.Errorf("JSON(%q): %v, want ErrInvalid", bad, err)
		}
	}
}
