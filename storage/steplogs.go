package storage

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
)

// StepLogs keeps what happened inside a run's steps beside the step log
// (Executor.RunSteps): the records a step wrote through its logger, and
// every failed attempt of a step. Both are written inside a transaction
// (a step's own, or the one that records its failure) and so vanish with
// it when it rolls back. Each is capped per step: see MaxStepLogRecords,
// MaxStepLogBytes and MaxStepFailures.
type StepLogs interface {
	// StepLogInsert appends records to the logs of step Position of run
	// RunID, in order, as far as the caps per step allow
	// (MaxStepLogRecords records, MaxStepLogBytes bytes of message and
	// attributes, counted over every call for the step): the first records
	// are kept, the rest dropped and counted, with p.Dropped (records the
	// caller already dropped), in the step's drop marker. It writes nothing
	// when there is nothing to keep or count. Invalid params are
	// acidic.ErrInvalid, and nothing is written.
	StepLogInsert(ctx context.Context, p StepLogInsertParams) error
	// StepFailureInsert adds a failed attempt to the history of step
	// Position of run RunID, and forgets the oldest failures of the step
	// beyond MaxStepFailures (they stay counted). Invalid params are
	// acidic.ErrInvalid, and nothing is written.
	StepFailureInsert(ctx context.Context, p StepFailureInsertParams) error
	// StepDetails returns the kept logs and failures of every step of run
	// RunID that has any, by position.
	StepDetails(ctx context.Context, p StepDetailsParams) ([]StepDetail, error)
}

// StepLogInsertParams are the records StepLogInsert appends to one step's
// logs.
type StepLogInsertParams struct {
	RunID    uuid.UUID
	Position int
	// Records are appended in order; at most MaxStepLogRecords of them.
	Records []acidic.LogRecord
	// Dropped counts records the caller dropped already (its own buffer
	// was full); they are counted in the step's drop marker.
	Dropped int
}

// Validate returns acidic.ErrInvalid naming the problem, or nil: a nil run,
// a negative position or count, more than MaxStepLogRecords records, a
// record without a time or level, whose time is outside years 1 to MaxYear,
// whose message or attributes are longer than MaxLogRecordBytes, whose
// message is not text PostgreSQL stores, or whose attributes are not a JSON
// object jsonb stores. LogRecordOf builds records that pass.
func (p StepLogInsertParams) Validate() error {
	switch {
	case p.RunID == uuid.Nil:
		return invalidIf("step logs: no run")
	case p.Position < 0:
		return invalidIf(fmt.Sprintf("step logs: position %d is negative", p.Position))
	case p.Dropped < 0:
		return invalidIf(fmt.Sprintf("step logs: dropped %d is negative", p.Dropped))
	case len(p.Records) > MaxStepLogRecords:
		return invalidIf(fmt.Sprintf("step logs: %d records; at most %d are kept per step", len(p.Records), MaxStepLogRecords))
	}
	for i, r := range p.Records {
		if problem := logRecordProblem(r); problem != "" {
			return invalidIf(fmt.Sprintf("step logs: record %d: %s", i, problem))
		}
	}
	return nil
}

func logRecordProblem(r acidic.LogRecord) string {
	if r.Time.IsZero() {
		return "no time"
	}
	if p := timeProblem("time", r.Time); p != "" {
		return p
	}
	if p := nameProblem("level", r.Level); p != "" {
		return p
	}
	if p := textProblem("message", r.Message, MaxLogRecordBytes); p != "" {
		return p
	}
	if r.Attempt < 0 {
		return fmt.Sprintf("attempt %d is negative", r.Attempt)
	}
	if len(r.Attrs) == 0 {
		return ""
	}
	if len(r.Attrs) > MaxLogRecordBytes {
		return fmt.Sprintf("attrs are %d bytes; at most %d are allowed", len(r.Attrs), MaxLogRecordBytes)
	}
	if p := jsonProblem("attrs", r.Attrs); p != "" {
		return p
	}
	if r.Attrs[0] != '{' {
		return "attrs are not a JSON object"
	}
	return ""
}

// LogRecordSize is what a record counts against MaxStepLogBytes: the bytes
// of its message and attributes.
func LogRecordSize(r acidic.LogRecord) int { return len(r.Message) + len(r.Attrs) }

// LogRecordOf returns a record that StepLogInsertParams.Validate accepts:
// message made valid text (as Text does) and cut to MaxLogRecordBytes,
// attributes longer than that (or not a JSON object jsonb stores) replaced
// by {"!cut": <their length>}, a zero time taken as now.
func LogRecordOf(t time.Time, level, msg string, attrs []byte, attempt int) acidic.LogRecord {
	if t.IsZero() {
		t = time.Now()
	}
	if level == "" {
		level = "INFO"
	}
	msg = strings.ReplaceAll(strings.ToValidUTF8(msg, "\uFFFD"), "\x00", "")
	if len(msg) > MaxLogRecordBytes {
		note := fmt.Sprintf(" … [cut: %d bytes in all]", len(msg))
		end := MaxLogRecordBytes - len(note)
		for end > 0 && !utf8.RuneStart(msg[end]) {
			end--
		}
		msg = msg[:end] + note
	}
	r := acidic.LogRecord{Time: t, Level: level, Message: msg, Attempt: attempt}
	if len(attrs) > 0 {
		if len(attrs) > MaxLogRecordBytes || jsonProblem("attrs", attrs) != "" || attrs[0] != '{' {
			attrs = fmt.Appendf(nil, `{"!cut":%d}`, len(attrs))
		}
		r.Attrs = attrs
	}
	return r
}

// StepFailureInsertParams is the failed attempt StepFailureInsert adds to
// one step's history.
type StepFailureInsertParams struct {
	RunID    uuid.UUID
	Position int
	Failure  acidic.StepFailure
}

// Validate returns acidic.ErrInvalid naming the problem, or nil: a nil run,
// a negative position or attempt, times outside years 1 to MaxYear. The
// error text is stored as Text leaves it.
func (p StepFailureInsertParams) Validate() error {
	switch {
	case p.RunID == uuid.Nil:
		return invalidIf("step failure: no run")
	case p.Position < 0:
		return invalidIf(fmt.Sprintf("step failure: position %d is negative", p.Position))
	case p.Failure.Attempt < 0:
		return invalidIf(fmt.Sprintf("step failure: attempt %d is negative", p.Failure.Attempt))
	}
	if p := timeProblem("StartedAt", p.Failure.StartedAt); p != "" {
		return invalidIf("step failure: " + p)
	}
	return invalidIf(timeProblem("FailedAt", p.Failure.FailedAt))
}

// StepDetailsParams names the run whose step details StepDetails returns.
type StepDetailsParams struct {
	RunID uuid.UUID
}

// StepDetail is what StepLogs keeps for one step of a run.
type StepDetail struct {
	Position int
	// Logs are the kept records, oldest first, then the drop marker when
	// LogsDropped > 0 (see acidic.Step.Logs).
	Logs        []acidic.LogRecord
	LogsDropped int
	// Failures are the kept failed attempts, oldest first;
	// FailuresDropped counts the older ones forgotten.
	Failures        []acidic.StepFailure
	FailuresDropped int
}

// DropMarker is the record that ends a step's logs when records were
// dropped: it says how many, and the caps.
func DropMarker(dropped int, at time.Time) acidic.LogRecord {
	return acidic.LogRecord{
		Time:  at,
		Level: "WARN",
		Message: fmt.Sprintf("acidic: %d more log records of this step dropped (kept per step: %d records, %d bytes)",
			dropped, MaxStepLogRecords, MaxStepLogBytes),
		Attrs: fmt.Appendf(nil, `{"dropped":%d}`, dropped),
	}
}

// StepsWithDetails returns run id's step log (RunSteps) with each step's
// kept logs and failures (StepDetails).
func StepsWithDetails(ctx context.Context, ex Executor, id uuid.UUID) ([]acidic.Step, error) {
	log, err := ex.RunSteps(ctx, RunStepsParams{ID: id})
	if err != nil || len(log) == 0 {
		return log, err
	}
	details, err := ex.StepDetails(ctx, StepDetailsParams{RunID: id})
	if err != nil {
		return nil, err
	}
	byPos := make(map[int]StepDetail, len(details))
	for _, d := range details {
		byPos[d.Position] = d
	}
	for i := range log {
		d, ok := byPos[log[i].Position]
		if !ok {
			continue
		}
		log[i].Logs, log[i].LogsDropped = d.Logs, d.LogsDropped
		log[i].Failures, log[i].FailuresDropped = d.Failures, d.FailuresDropped
	}
	return log, nil
}
