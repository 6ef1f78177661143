// Package canonical writes JSON in one canonical form, so equal values give
// equal bytes: idempotency keys and unique-job keys hash it.
package canonical

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrInvalid is returned, wrapped, for input that is not one JSON value.
var ErrInvalid = errors.New("invalid JSON")

// JSON returns raw with object keys sorted and insignificant whitespace
// removed; numbers keep the digits they were written with.
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

// Decode parses one JSON value, keeping numbers as json.Number.
func Decode(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON value", ErrInvalid)
	}
	return v, nil
}
