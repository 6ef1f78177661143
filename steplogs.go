package acidic

import (
	"encoding/json"
	"time"
)

// LogRecord is one record a step wrote through its logger
// (steps.Context.Logger), kept with the step's entry in the run's step log
// (Step.Logs). Records are stored in the step's own transaction: a step that
// commits keeps them, a step that rolls back (it failed, or its transaction
// was retried) keeps none of that try. See docs/observability.md, "Logs kept
// with each run", for the caps.
type LogRecord struct {
	// Time is when the step wrote the record (the worker's clock).
	Time time.Time `json:"time"`
	// Level is the record's slog level as text: DEBUG, INFO, WARN, ERROR
	// (or such a name with an offset, INFO+2).
	Level string `json:"level"`
	// Message is the record's message, cut to storage.MaxLogRecordBytes.
	Message string `json:"message"`
	// Attrs are the record's attributes as a JSON object (a group becomes a
	// nested object); nil when it has none. Attributes whose JSON is longer
	// than storage.MaxLogRecordBytes are replaced by {"!cut": <bytes>}.
	Attrs json.RawMessage `json:"attrs,omitempty"`
	// Attempt is the job attempt that ran the step when it wrote the record.
	Attempt int `json:"attempt"`
}

// StepFailure is one failed attempt of a step: its error and timing, kept in
// the step's history (Step.Failures) whatever the later attempts did.
type StepFailure struct {
	// Attempt is the job attempt that failed.
	Attempt int `json:"attempt"`
	// Error is the step's error (cut as storage.Text cuts it).
	Error string `json:"error"`
	// StartedAt is when the attempt started the step; FailedAt when the
	// failure was recorded.
	StartedAt time.Time `json:"started_at"`
	FailedAt  time.Time `json:"failed_at"`
}
