package run

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic/internal/base/canonical"
)

// ErrKey is returned, wrapped, when an idempotency key cannot be derived
// (a custom key function failed or returned an empty key).
var ErrKey = errors.New("run: cannot derive idempotency key")

// Strategy derives a run's idempotency key from its workflow name and
// canonical JSON arguments. The zero Strategy is ByJobID.
type Strategy struct {
	name string
	fn   func(workflow string, args json.RawMessage, runID uuid.UUID) (string, error)
}

// String names the strategy.
func (s Strategy) String() string {
	if s.fn == nil {
		return "by-job-id"
	}
	return s.name
}

// Key derives the key for a new run with id runID.
func (s Strategy) Key(workflow string, args json.RawMessage, runID uuid.UUID) (string, error) {
	if s.fn == nil {
		return ByJobID().Key(workflow, args, runID)
	}
	key, err := s.fn(workflow, args, runID)
	if err != nil {
		return "", fmt.Errorf("%w (%s): %w", ErrKey, s.name, err)
	}
	if key == "" {
		return "", fmt.Errorf("%w (%s): empty key", ErrKey, s.name)
	}
	return key, nil
}

// ByJobID makes every enqueue its own run: the key is the new run's id, so
// only retries of that run's job share it. This is the default.
func ByJobID() Strategy {
	return Strategy{name: "by-job-id", fn: func(workflow string, _ json.RawMessage, runID uuid.UUID) (string, error) {
		return workflow + ":" + runID.String(), nil
	}}
}

// ByArgs makes runs of the same workflow with equal arguments one run: the key
// is a hash of the canonical JSON of the arguments, so the order of object
// keys and insignificant whitespace do not matter.
func ByArgs() Strategy {
	return Strategy{name: "by-args", fn: func(workflow string, args json.RawMessage, _ uuid.UUID) (string, error) {
		canonical, err := Canonical(args)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(canonical)
		return workflow + ":args:" + hex.EncodeToString(sum[:]), nil
	}}
}

// By derives the key with fn from the arguments decoded into A, for keys made
// of some fields only (an order id, say). The workflow's name is prefixed, so
// two workflows never share a key.
func By[A any](fn func(args A) (string, error)) Strategy {
	return Strategy{name: "custom", fn: func(workflow string, raw json.RawMessage, _ uuid.UUID) (string, error) {
		var args A
		if err := json.Unmarshal(raw, &args); err != nil {
			return "", fmt.Errorf("decode args for the key: %w", err)
		}
		key, err := fn(args)
		if err != nil || key == "" {
			return key, err
		}
		return WorkflowKey(workflow, key), nil
	}}
}

// WorkflowKey is the idempotency key stored for a key of a workflow's run:
// the workflow's name, a colon and the key. Keys are namespaced per
// workflow this way, whether By derives them or a caller gives them, so a
// key one workflow uses never blocks another's.
func WorkflowKey(workflow, key string) string { return workflow + ":" + key }

// ErrArgs is returned, wrapped, for arguments that are not valid JSON.
var ErrArgs = errors.New("run: invalid arguments")

// Canonical returns args as canonical JSON: objects with sorted keys, no
// insignificant whitespace, numbers as written. Equal values give equal bytes.
func Canonical(args json.RawMessage) (json.RawMessage, error) {
	out, err := canonical.JSON(args)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrArgs, err)
	}
	return out, nil
}

// SameArgs reports whether two JSON documents are equal as values.
func SameArgs(a, b json.RawMessage) (bool, error) {
	ca, err := Canonical(a)
	if err != nil {
		return false, err
	}
	cb, err := Canonical(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(ca, cb), nil
}
