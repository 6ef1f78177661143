// Package canonical writes JSON in one canonical form, so equal values give
// equal bytes: idempotency keys and unique-job keys hash it, and arguments are
// compared with it.
//
// The form matches what PostgreSQL's jsonb keeps of a document: object keys
// sorted (jsonb sorts differently, but only equality matters), no
// insignificant whitespace, and numbers written as plain decimals without
// exponent or redundant zeros, so 1e2, 100 and 100.0 are one number, as they
// are to jsonb.
package canonical

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrInvalid is returned, wrapped, for input that is not one JSON value.
var ErrInvalid = errors.New("invalid JSON")

// JSON returns raw in canonical form.
func JSON(raw []byte) (json.RawMessage, error) {
	v, err := Decode(raw)
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return out, nil
}

// Decode parses one JSON value, with numbers as canonical json.Number.
func Decode(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the JSON value", ErrInvalid)
	}
	return normalize(v)
}

func normalize(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	case []any:
		for i, e := range x {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	case json.Number:
		return Number(x)
	}
	return v, nil
}

// maxPlainExponent bounds how many zeros a plain decimal may need; beyond it
// the number keeps an exponent (still canonical, and far past what anyone
// puts in arguments).
const maxPlainExponent = 1000

// maxExponent bounds the exponents Number accepts; jsonb's numeric type
// cannot hold numbers anywhere near it.
const maxExponent = 1 << 20

// Number writes a JSON number as a plain decimal: no exponent, no leading or
// trailing zeros, no sign on zero. 1e2, 100 and 100.00 all become 100;
// 1e-7 becomes 0.0000001. An exponent beyond ±2^20 is ErrInvalid.
func Number(n json.Number) (json.Number, error) {
	s := string(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mantissa, expPart, _ := strings.Cut(strings.ToLower(s), "e")
	exp := 0
	if expPart != "" {
		e, err := strconv.Atoi(strings.TrimPrefix(expPart, "+"))
		if err != nil || e > maxExponent || e < -maxExponent || len(mantissa) > maxExponent {
			return "", fmt.Errorf("%w: number %s is out of range", ErrInvalid, n)
		}
		exp = e
	}
	intPart, frac, _ := strings.Cut(mantissa, ".")
	digits := intPart + frac
	exp -= len(frac)
	// digits × 10^exp, with no leading or trailing zeros in digits.
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return "0", nil
	}
	trimmed := strings.TrimRight(digits, "0")
	exp += len(digits) - len(trimmed)
	digits = trimmed
	var out string
	switch {
	case exp > maxPlainExponent || exp < -maxPlainExponent-len(digits):
		out = digits + "e" + fmt.Sprint(exp)
	case exp >= 0:
		out = digits + strings.Repeat("0", exp)
	case -exp < len(digits):
		point := len(digits) + exp
		out = digits[:point] + "." + digits[point:]
	default:
		out = "0." + strings.Repeat("0", -exp-len(digits)) + digits
	}
	if neg {
		out = "-" + out
	}
	return json.Number(out), nil
}
