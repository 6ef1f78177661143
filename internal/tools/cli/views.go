package cli

import (
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/migrations"
)

// The types below are the shape of -json output, documented in docs/cli.md.
// They are the command's own, apart from the storage types: keys are
// snake_case, a value that is absent is null (never "", a zero time or a
// zero UUID), lists are [] when empty, and fields are only ever added.

// RunJSON is a run in -json output.
type RunJSON struct {
	ID             string          `json:"id"`
	Workflow       string          `json:"workflow"`
	State          string          `json:"state"`
	Queue          string          `json:"queue"`
	IdempotencyKey string          `json:"idempotency_key"`
	RecoveryPoint  *string         `json:"recovery_point"`
	DefinitionHash *string         `json:"definition_hash"`
	Args           json.RawMessage `json:"args"`
	Attrs          json.RawMessage `json:"attrs"`
	Cursor         int64           `json:"cursor"`
	Result         json.RawMessage `json:"result"`
	Error          *string         `json:"error"`
	ParentRunID    *string         `json:"parent_run_id"`
	ParentStep     *string         `json:"parent_step"`
	Awaiting       int             `json:"awaiting"`
	LockedBy       *string         `json:"locked_by"`
	LockedAt       *time.Time      `json:"locked_at"`
	LastRunAt      *time.Time      `json:"last_run_at"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
	FinishedAt     *time.Time      `json:"finished_at"`
	Tags           []string        `json:"tags"`
}

// RunDetailJSON is a run with its step log: runs get, retry ID, cancel ID.
type RunDetailJSON struct {
	RunJSON
	Steps []StepJSON `json:"steps"`
}

// StepJSON is one entry of a run's step log.
type StepJSON struct {
	// Position is the step's place in the workflow, 1 for the first.
	Position   int             `json:"position"`
	Name       string          `json:"name"`
	State      string          `json:"state"`
	Attempt    int             `json:"attempt"`
	Executions int             `json:"executions"`
	Result     json.RawMessage `json:"result"`
	Error      *string         `json:"error"`
	StartedAt  *time.Time      `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at"`
	// Logs are the records the step wrote through its logger (capped per
	// step; a drop marker last when some were dropped).
	Logs        []LogRecordJSON `json:"logs"`
	LogsDropped int             `json:"logs_dropped"`
	// Failures are the step's failed attempts, oldest first (the latest
	// ones, capped per step).
	Failures        []StepFailureJSON `json:"failures"`
	FailuresDropped int               `json:"failures_dropped"`
}

// LogRecordJSON is one log record kept with a step.
type LogRecordJSON struct {
	Time    time.Time       `json:"time"`
	Level   string          `json:"level"`
	Message string          `json:"message"`
	Attrs   json.RawMessage `json:"attrs"`
	Attempt int             `json:"attempt"`
}

// StepFailureJSON is one failed attempt of a step.
type StepFailureJSON struct {
	Attempt   int       `json:"attempt"`
	Error     string    `json:"error"`
	StartedAt time.Time `json:"started_at"`
	FailedAt  time.Time `json:"failed_at"`
}

// JobJSON is a job in -json output.
type JobJSON struct {
	ID                int64              `json:"id"`
	Queue             string             `json:"queue"`
	Kind              string             `json:"kind"`
	State             string             `json:"state"`
	Priority          int                `json:"priority"`
	Attempt           int                `json:"attempt"`
	MaxAttempts       int                `json:"max_attempts"`
	Args              json.RawMessage    `json:"args"`
	Meta              json.RawMessage    `json:"meta"`
	RunID             *string            `json:"run_id"`
	ScheduledAt       time.Time          `json:"scheduled_at"`
	AttemptedAt       *time.Time         `json:"attempted_at"`
	AttemptedBy       *string            `json:"attempted_by"`
	FinalizedAt       *time.Time         `json:"finalized_at"`
	CreatedAt         time.Time          `json:"created_at"`
	Errors            []AttemptErrorJSON `json:"errors"`
	DependsOn         []int64            `json:"depends_on"`
	DependencyFailure *string            `json:"dependency_failure"`
	UniqueKey         *string            `json:"unique_key"`
	Tags              []string           `json:"tags"`
}

// AttemptErrorJSON is one failed attempt of a job.
type AttemptErrorJSON struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	Error   string    `json:"error"`
}

// QueueJSON counts the jobs of one queue in one state.
type QueueJSON struct {
	Queue     string     `json:"queue"`
	State     string     `json:"state"`
	Count     int64      `json:"count"`
	OldestDue *time.Time `json:"oldest_due"`
	// OldestAvailableAge is the queue's (the same on each of its rows): how
	// long, in seconds, its oldest available job has waited; null when none
	// is available.
	OldestAvailableAge *float64 `json:"oldest_available_age_seconds"`
}

// QueueControlJSON is the controls of one queue: queues pause, resume,
// scale and controls.
type QueueControlJSON struct {
	Queue    string     `json:"queue"`
	Paused   bool       `json:"paused"`
	PausedAt *time.Time `json:"paused_at"`
	// MaxWorkers is the workers per node the queue was scaled to; null
	// when each node runs its own configuration's.
	MaxWorkers *int      `json:"max_workers"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// MigrationJSON is one migration and whether it is applied.
type MigrationJSON struct {
	Version   int        `json:"version"`
	Name      string     `json:"name"`
	Applied   bool       `json:"applied"`
	AppliedAt *time.Time `json:"applied_at"`
}

// MigrateUpJSON is what migrate up did: the versions it applied.
type MigrateUpJSON struct {
	Schema  string `json:"schema"`
	Applied []int  `json:"applied"`
}

// MigrateDownJSON is what migrate down did: the versions it reverted.
type MigrateDownJSON struct {
	Schema   string `json:"schema"`
	Reverted []int  `json:"reverted"`
}

// RetryRunsJSON is what runs retry by filter did.
type RetryRunsJSON struct {
	// Matched counts the runs the filter matched; Retried lists those
	// resumed; the others were no longer retryable when their turn came.
	Matched int       `json:"matched"`
	Retried []RunJSON `json:"retried"`
	Skipped int       `json:"skipped"`
}

// RetryJobsJSON is what jobs retry by filter did.
type RetryJobsJSON struct {
	// Matched counts the jobs the filter matched; Retried lists those made
	// available; the others (running or pending ones, say) were skipped.
	Matched int       `json:"matched"`
	Retried []JobJSON `json:"retried"`
	Skipped int       `json:"skipped"`
}

// CancelRunsJSON is what runs cancel by filter did.
type CancelRunsJSON struct {
	// Matched counts the runs the filter matched; Cancelled lists those
	// cancelled; the others had finished when their turn came (a child
	// cancelled with its parent, say).
	Matched   int       `json:"matched"`
	Cancelled []RunJSON `json:"cancelled"`
	Skipped   int       `json:"skipped"`
}

// CancelJobsJSON is what jobs cancel by filter did.
type CancelJobsJSON struct {
	// Matched counts the jobs the filter matched; Cancelled lists those
	// cancelled; the others had finished when their turn came.
	Matched   int       `json:"matched"`
	Cancelled []JobJSON `json:"cancelled"`
	Skipped   int       `json:"skipped"`
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullUUID(id uuid.UUID) *string {
	if id == uuid.Nil {
		return nil
	}
	s := id.String()
	return &s
}

func nullTime(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	return t
}

func nullRaw(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	return raw
}

func runJSON(r *acidic.Run) RunJSON {
	return RunJSON{
		ID:             r.ID.String(),
		Workflow:       r.Workflow,
		State:          string(r.State),
		Queue:          r.Queue,
		IdempotencyKey: r.IdempotencyKey,
		RecoveryPoint:  nullString(r.RecoveryPoint),
		DefinitionHash: nullString(r.DefinitionHash),
		Args:           nullRaw(r.Args),
		Attrs:          nullRaw(r.Attrs),
		Cursor:         r.Cursor,
		Result:         nullRaw(r.Result),
		Error:          nullString(r.Error),
		ParentRunID:    nullUUID(r.ParentRunID),
		ParentStep:     nullString(r.ParentStep),
		Awaiting:       r.Awaiting,
		LockedBy:       nullString(r.LockedBy),
		LockedAt:       nullTime(r.LockedAt),
		LastRunAt:      nullTime(r.LastRunAt),
		CreatedAt:      r.CreatedAt,
		UpdatedAt:      r.UpdatedAt,
		FinishedAt:     nullTime(r.FinishedAt),
		Tags:           tagList(r.Tags),
	}
}

func runsJSON(runs []*acidic.Run) []RunJSON {
	out := make([]RunJSON, 0, len(runs))
	for _, r := range runs {
		out = append(out, runJSON(r))
	}
	return out
}

func runDetailJSON(r *acidic.Run) RunDetailJSON {
	steps := make([]StepJSON, 0, len(r.Steps))
	for _, s := range r.Steps {
		steps = append(steps, StepJSON{
			Position:   s.Position + 1,
			Name:       s.Name,
			State:      string(s.State),
			Attempt:    s.Attempt,
			Executions: s.Executions,
			Result:     nullRaw(s.Result),
			Error:      nullString(s.Error),
			StartedAt:  nullTime(&s.StartedAt),
			FinishedAt: nullTime(&s.FinishedAt),

			Logs:            logsJSON(s.Logs),
			LogsDropped:     s.LogsDropped,
			Failures:        failuresJSON(s.Failures),
			FailuresDropped: s.FailuresDropped,
		})
	}
	return RunDetailJSON{RunJSON: runJSON(r), Steps: steps}
}

func jobJSON(j *acidic.Job) JobJSON {
	errs := make([]AttemptErrorJSON, 0, len(j.Errors))
	for _, e := range j.Errors {
		errs = append(errs, AttemptErrorJSON{Attempt: e.Attempt, At: e.At, Error: e.Error})
	}
	var key *string
	if len(j.UniqueKey) > 0 {
		k := hex.EncodeToString(j.UniqueKey)
		key = &k
	}
	deps := j.DependsOn
	if deps == nil {
		deps = []int64{}
	}
	return JobJSON{
		ID:                j.ID,
		Queue:             j.Queue,
		Kind:              j.Kind,
		State:             string(j.State),
		Priority:          j.Priority,
		Attempt:           j.Attempt,
		MaxAttempts:       j.MaxAttempts,
		Args:              nullRaw(j.Args),
		Meta:              nullRaw(j.Meta),
		RunID:             nullUUID(j.RunID),
		ScheduledAt:       j.ScheduledAt,
		AttemptedAt:       nullTime(j.AttemptedAt),
		AttemptedBy:       nullString(j.AttemptedBy),
		FinalizedAt:       nullTime(j.FinalizedAt),
		CreatedAt:         j.CreatedAt,
		Errors:            errs,
		DependsOn:         deps,
		DependencyFailure: nullString(j.DependencyFailure),
		UniqueKey:         key,
		Tags:              tagList(j.Tags),
	}
}

func jobsJSON(jobs []*acidic.Job) []JobJSON {
	out := make([]JobJSON, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, jobJSON(j))
	}
	return out
}

func queuesJSON(stats []acidic.QueueStats, ages []acidic.QueueAge) []QueueJSON {
	age := map[string]*float64{}
	for _, a := range ages {
		secs := a.OldestAge.Seconds()
		age[a.Queue] = &secs
	}
	out := make([]QueueJSON, 0, len(stats))
	for _, s := range stats {
		out = append(out, QueueJSON{Queue: s.Queue, State: string(s.State), Count: s.Count, OldestDue: nullTime(s.OldestDue),
			OldestAvailableAge: age[s.Queue]})
	}
	return out
}

func migrationsJSON(st []migrations.Status) []MigrationJSON {
	out := make([]MigrationJSON, 0, len(st))
	for _, s := range st {
		var at *time.Time
		if s.Applied {
			at = nullTime(&s.AppliedAt)
		}
		out = append(out, MigrationJSON{Version: s.Version, Name: s.Name, Applied: s.Applied, AppliedAt: at})
	}
	return out
}

func queueControlJSON(c *acidic.QueueControl) QueueControlJSON {
	var workers *int
	if c.MaxWorkers > 0 {
		n := c.MaxWorkers
		workers = &n
	}
	return QueueControlJSON{Queue: c.Queue, Paused: c.Paused, PausedAt: nullTime(c.PausedAt), MaxWorkers: workers,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

func logsJSON(logs []acidic.LogRecord) []LogRecordJSON {
	out := make([]LogRecordJSON, 0, len(logs))
	for _, l := range logs {
		out = append(out, LogRecordJSON{Time: l.Time, Level: l.Level, Message: l.Message, Attrs: nullRaw(l.Attrs), Attempt: l.Attempt})
	}
	return out
}

func failuresJSON(fs []acidic.StepFailure) []StepFailureJSON {
	out := make([]StepFailureJSON, 0, len(fs))
	for _, f := range fs {
		out = append(out, StepFailureJSON{Attempt: f.Attempt, Error: f.Error, StartedAt: f.StartedAt, FailedAt: f.FailedAt})
	}
	return out
}
