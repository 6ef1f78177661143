package acidic

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// AwaitedJob is a queue job that a step of a run awaited (steps.AwaitJobs),
// as the run saw it when it resumed: the job's final state and its errors.
// Jobs return no result; a worker whose result the run needs writes it
// where the next step reads it (a table of yours), or the run awaits a
// workflow run instead, whose result it reads with steps.ChildResults.
type AwaitedJob struct {
	// RunID and Step name the run and the await step that awaited the job.
	RunID uuid.UUID
	Step  string
	// JobID is the job's id; Kind, Queue and Args are the job's.
	JobID int64
	Kind  string
	Queue string
	Args  json.RawMessage
	// State is the job's state when the run resumed (completed, cancelled
	// or discarded). Before the run resumed, and when the run moved on
	// without the job (it was cancelled and retried while the job ran), it
	// is the job's state now, or "" once the job is pruned.
	State JobState
	// Errors are the job's attempt errors, oldest first.
	Errors []AttemptError
	// FinalizedAt is when the job ended; nil while it has not.
	FinalizedAt *time.Time
}

// Succeeded reports whether the job completed.
func (j *AwaitedJob) Succeeded() bool { return j.State == JobCompleted }

// LastError is the text of the job's last attempt error, or "".
func (j *AwaitedJob) LastError() string {
	if n := len(j.Errors); n > 0 {
		return j.Errors[n-1].Error
	}
	return ""
}
