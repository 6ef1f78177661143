package storage

import (
	"fmt"
	"math"

	"github.com/acidic-go/acidic"
	"github.com/google/uuid"
)

// This file holds the rules every write is checked against, before it
// reaches the database: a driver calls these, and the layers above call them
// earlier to refuse bad input with their own errors. Each returns acidic.ErrInvalid
// wrapped with the field and the rule it breaks; the limits are in limits.go
// and docs/limits.md. Free text (errors) is not refused but cleaned, with
// Text. The runs, run_steps and jobs tables carry no CHECK constraints
// (migrations 0005 and 0006: PostgreSQL re-plans them at every write), so
// these checks are the only guard of the states written there.

// Validate returns acidic.ErrInvalid for a job the storage cannot hold: a queue or
// kind that is not a valid name (CheckName), args or meta that are not JSON
// jsonb can store (CheckJSON), a ScheduledAt outside years 1 to MaxYear, a
// state a new job cannot have, a priority outside 0..LowestJobPriority, an
// attempt limit outside 1..math.MaxInt32, an unknown DependencyFailure.
func (j JobInsert) Validate() error {
	if p := nameProblem("kind", j.Kind); p != "" {
		return invalidIf("job: " + p)
	}
	if p := j.problem(); p != "" {
		return invalidIf("job of kind " + short(j.Kind) + ": " + p)
	}
	return nil
}

func (j JobInsert) problem() string {
	if p := nameProblem("queue", j.Queue); p != "" {
		return p
	}
	if p := tagsProblem(j.Tags); p != "" {
		return p
	}
	if p := jsonProblem("args", j.Args); p != "" {
		return p
	}
	if p := optionalJSONProblem("meta", j.Meta); p != "" {
		return p
	}
	if p := timeProblem("ScheduledAt", j.ScheduledAt); p != "" {
		return p
	}
	switch {
	case j.State != acidic.JobAvailable && j.State != acidic.JobScheduled && j.State != acidic.JobPending:
		return fmt.Sprintf("a new job cannot be %q", j.State)
	case j.Priority < 0 || j.Priority > acidic.LowestJobPriority:
		return fmt.Sprintf("priority %d outside 0..%d", j.Priority, acidic.LowestJobPriority)
	case j.MaxAttempts < 1 || j.MaxAttempts > math.MaxInt32:
		return fmt.Sprintf("MaxAttempts %d outside 1..%d", j.MaxAttempts, math.MaxInt32)
	}
	switch j.DependencyFailure {
	case "", "cancel", "discard", "ignore":
		return ""
	}
	return fmt.Sprintf("unknown DependencyFailure %q", j.DependencyFailure)
}

// Validate returns acidic.ErrInvalid for an outcome no attempt can end with: a
// state other than retryable, scheduled, cancelled or discarded, or a
// ScheduledAt outside years 1 to MaxYear. Its error text is stored as Text
// leaves it.
func (o JobFinishParams) Validate() error {
	switch o.State {
	case acidic.JobRetryable, acidic.JobScheduled, acidic.JobCancelled, acidic.JobDiscarded:
	default:
		return invalidIf(fmt.Sprintf("job %d: an attempt cannot end %q", o.ID, o.State))
	}
	if p := timeProblem("ScheduledAt", o.ScheduledAt); p != "" {
		return invalidIf(fmt.Sprintf("job %d: %s", o.ID, p))
	}
	return nil
}

// Validate returns acidic.ErrInvalid for a run the storage cannot hold: an
// idempotency key that is not a valid key (CheckKey), a workflow, queue,
// recovery point or parent step that is not a valid name (CheckName), args
// that are not JSON jsonb can store (CheckJSON).
func (r RunInsertParams) Validate() error {
	if p := r.problem(); p != "" {
		return invalidIf("run of workflow " + short(r.Workflow) + ": " + p)
	}
	return nil
}

func (r RunInsertParams) problem() string {
	if p := keyProblem("idempotency key", r.IdempotencyKey); p != "" {
		return p
	}
	if p := tagsProblem(r.Tags); p != "" {
		return p
	}
	if p := nameProblem("workflow", r.Workflow); p != "" {
		return p
	}
	if p := nameProblem("queue", r.Queue); p != "" {
		return p
	}
	if p := jsonProblem("args", r.Args); p != "" {
		return p
	}
	if p := nameProblem("recovery point", r.RecoveryPoint); p != "" {
		return p
	}
	if p := textProblem("definition hash", r.DefinitionHash, MaxNameBytes); p != "" {
		return p
	}
	if len(r.Attrs) > 0 {
		if p := jsonProblem("initial persisted state", r.Attrs); p != "" {
			return p
		}
	}
	if r.ParentStep != "" {
		return nameProblem("parent step", r.ParentStep)
	}
	return ""
}

// Validate returns acidic.ErrInvalid for a progress write the storage cannot hold:
// an unknown run or step state, a negative awaiting count, a recovery point
// or step name that is not a valid name, persisted state or results that
// jsonb cannot store (invalid UTF-8, \u0000, an unpaired surrogate, a number
// beyond numeric; see CheckJSON). These are JSON the engine encoded with
// encoding/json on the path of every step, so they are not parsed again:
// JSON that is not well formed is left to the database to refuse. Its error
// texts are stored as Text leaves them.
func (u RunUpdateParams) Validate() error {
	return runProblem(u.ID, u.problem())
}

func (u RunUpdateParams) problem() string {
	if p := runStateProblem(u.State); p != "" {
		return p
	}
	if u.Awaiting < 0 {
		return fmt.Sprintf("awaiting %d children", u.Awaiting)
	}
	if u.Settle && !u.State.Final() {
		return fmt.Sprintf("a %s run cannot be settled; only a finished one", u.State)
	}
	if u.RecoveryPoint != "" {
		if p := nameProblem("recovery point", u.RecoveryPoint); p != "" {
			return p
		}
	}
	if p := encodedJSONProblem("persisted state", u.Attrs); p != "" {
		return p
	}
	if p := encodedJSONProblem("result", u.Result); p != "" {
		return p
	}
	return stepProblem(u.Step)
}

// Validate returns acidic.ErrInvalid for an end the storage cannot hold: a state
// other than failed or cancelled, or a kind that is not a valid name. Its
// error text is stored as Text leaves it.
func (e RunEndParams) Validate() error {
	if e.State != acidic.RunFailed && e.State != acidic.RunCancelled {
		return runProblem(e.ID, fmt.Sprintf("a run ends with its job as failed or cancelled, not %q", e.State))
	}
	return runProblem(e.ID, nameProblem("kind", e.Kind))
}

// Validate returns acidic.ErrInvalid for a release the storage cannot hold: an
// unknown run or step state, or a step name that is not a valid name. Its
// error texts are stored as Text leaves them.
func (r RunReleaseParams) Validate() error {
	if p := runStateProblem(r.State); p != "" {
		return runProblem(r.ID, p)
	}
	return runProblem(r.ID, stepProblem(r.Step))
}

// CheckRunState returns acidic.ErrInvalid, naming run id, for a state that is not
// one of the run states: the state a write such as Executor.RunSetState
// cannot set.
func CheckRunState(id uuid.UUID, s acidic.RunState) error {
	return runProblem(id, runStateProblem(s))
}

// Validate returns acidic.ErrInvalid for a message the storage cannot hold: a topic
// that is not a valid key, a key that is neither empty nor a valid key
// (CheckKey), a payload that is not JSON jsonb can store (CheckJSON).
func (m OutboxInsert) Validate() error {
	if p := m.problem(); p != "" {
		return invalidIf("outbox message to topic " + short(m.Topic) + ": " + p)
	}
	return nil
}

func (m OutboxInsert) problem() string {
	if p := keyProblem("topic", m.Topic); p != "" {
		return p
	}
	if p := textProblem("key", m.Key, MaxKeyBytes); p != "" {
		return p
	}
	if p := jsonProblem("payload", m.Payload); p != "" {
		return p
	}
	return optionalJSONProblem("meta", m.Meta)
}

func runStateProblem(s acidic.RunState) string {
	if !s.Valid() {
		return fmt.Sprintf("run state %q", s)
	}
	return ""
}

func stepProblem(s *acidic.Step) string {
	if s == nil {
		return ""
	}
	if !s.State.Valid() {
		return fmt.Sprintf("step state %q", s.State)
	}
	if p := nameProblem("step name", s.Name); p != "" {
		return p
	}
	return encodedJSONProblem("step result", s.Result)
}

func optionalJSONProblem(field string, raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	return jsonProblem(field, raw)
}

func runProblem(id uuid.UUID, problem string) error {
	if problem == "" {
		return nil
	}
	return fmt.Errorf("write run %s: %w: %s", id, acidic.ErrInvalid, problem)
}
