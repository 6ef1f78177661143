package acidic

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/google/uuid"
)

var (
	// ErrDecode matches every *DecodeError: stored JSON (arguments,
	// persisted state, a result) that does not decode into the Go type asked
	// for.
	ErrDecode = errors.New("acidic: JSON does not decode")

	// ErrNoResult is returned by DecodeResult and DecodeStepResult when
	// there is nothing to decode: the run has not succeeded (only a run's
	// last step, on success, makes the run's result), or no step set a
	// result with SetResult.
	ErrNoResult = errors.New("acidic: no result")
)

// DecodeError says which stored JSON did not decode into which Go type.
// errors.Is(err, ErrDecode) holds, and errors.As finds the JSON error
// (a *json.UnmarshalTypeError, say) through it.
type DecodeError struct {
	// What was decoded: "args", "state", "result", "step result" or
	// "job args".
	What string
	// RunID is the run the JSON belongs to; zero for a job's args.
	RunID uuid.UUID
	// Step names the step whose result it is, for a step result.
	Step string
	// JobID is the job whose args they are, for job args.
	JobID int64
	// Type is the Go type the JSON was decoded into.
	Type string
	// Err is the JSON decoder's error.
	Err error
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "acidic: %s", e.What)
	switch {
	case e.JobID != 0:
		fmt.Fprintf(&b, " of job %d", e.JobID)
	case e.Step != "":
		fmt.Fprintf(&b, " of step %q of run %s", e.Step, e.RunID)
	case e.RunID != uuid.Nil:
		fmt.Fprintf(&b, " of run %s", e.RunID)
	}
	fmt.Fprintf(&b, ": cannot decode into %s: %v", e.Type, e.Err)
	return b.String()
}

// Unwrap returns ErrDecode and the JSON decoder's error.
func (e *DecodeError) Unwrap() []error { return []error{ErrDecode, e.Err} }

// DecodeResult returns the result of r (its last step's SetResult) decoded
// into R. A run without a result (one that has not succeeded, or whose last
// step set none) is ErrNoResult; JSON that does not decode into R is a
// *DecodeError. JSON null leaves R zero.
func DecodeResult[R any](r *Run) (R, error) {
	var v R
	if len(r.Result) == 0 {
		return v, fmt.Errorf("%w: run %s (%s) is %s", ErrNoResult, r.ID, r.Workflow, r.State)
	}
	err := decodeInto(r.Result, &v, DecodeError{What: "result", RunID: r.ID})
	return v, err
}

// DecodeStepResult returns the result the step named step set in r's step
// log, decoded into R. r must carry its step log (a run from Get or Wait
// does; runs from List do not). A step not in the log is ErrNotFound, a step
// without a result ErrNoResult, and JSON that does not decode into R a
// *DecodeError.
func DecodeStepResult[R any](r *Run, step string) (R, error) {
	var v R
	for _, s := range r.Steps {
		if s.Name != step {
			continue
		}
		if len(s.Result) == 0 {
			return v, fmt.Errorf("%w: step %q of run %s (%s)", ErrNoResult, step, r.ID, s.State)
		}
		err := decodeInto(s.Result, &v, DecodeError{What: "step result", RunID: r.ID, Step: step})
		return v, err
	}
	return v, fmt.Errorf("%w: step %q in the step log of run %s", ErrNotFound, step, r.ID)
}

// decodeInto unmarshals raw into v, a pointer; on failure it returns at
// with the type and the decoder's error filled in.
func decodeInto(raw json.RawMessage, v any, at DecodeError) error {
	if err := json.Unmarshal(raw, v); err != nil {
		at.Type = reflect.TypeOf(v).Elem().String()
		at.Err = err
		return &at
	}
	return nil
}
