package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/base/statebits"
)

// row is what both *sql.Row and *sql.Rows offer.
type row interface{ Scan(dest ...any) error }

// blobID passes a run id as its 16 bytes; nil for uuid.Nil.
func blobID(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	b := make([]byte, 16)
	copy(b, id[:])
	return b
}

// uuidOf reads a run id column; uuid.Nil for NULL.
func uuidOf(b []byte) (uuid.UUID, error) {
	if b == nil {
		return uuid.Nil, nil
	}
	return uuid.FromBytes(b)
}

// jsonParam passes JSON as text (never as a blob, which SQLite's JSON
// functions would take for its binary JSONB); empty means SQL NULL.
func jsonParam(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// idList writes ids as a JSON array, for the queries' json_each; "[]" for none.
func idList(ids []int64) string {
	b := make([]byte, 0, 2+len(ids)*8)
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}

// pairList writes id and number pairs as a JSON array of arrays.
func pairList[T ~int | ~int64](n int, at func(i int) (int64, T)) string {
	b := make([]byte, 0, 2+n*12)
	b = append(b, '[')
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		id, v := at(i)
		b = append(b, '[')
		b = strconv.AppendInt(b, id, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(v), 10)
		b = append(b, ']')
	}
	return string(append(b, ']'))
}

// stringList writes strings as a JSON array; nil stays nil (SQL NULL).
func stringList[S ~string](list []S) any {
	if list == nil {
		return nil
	}
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = string(s)
	}
	b, _ := json.Marshal(parts) // strings always encode
	return string(b)
}

// dependsOn reads the depends_on column.
func dependsOn(s sql.NullString) ([]int64, error) {
	if !s.Valid {
		return nil, nil
	}
	var ids []int64
	if err := json.Unmarshal([]byte(s.String), &ids); err != nil {
		return nil, err
	}
	return ids, nil
}

func nullTimeOf(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := timeOf(v.Int64)
	return &t
}

func scanJob(r row) (*acidic.Job, error) { return scanJobWith(r) }

// scanJobWith scans a job row ({job_columns}) followed by extra columns into
// extra.
func scanJobWith(r row, extra ...any) (*acidic.Job, error) {
	var (
		j                        acidic.Job
		runID                    []byte
		state, depFailure        string
		scheduledAt, createdAt   int64
		attemptedAt, finalizedAt sql.NullInt64
		errorsJSON, args, meta   []byte
		uniqueStates             int64
		deps, tags               sql.NullString
	)
	dest := append([]any{&j.ID, &j.Queue, &j.Kind, &args, &runID, &state, &j.Priority, &j.Attempt, &j.MaxAttempts,
		&scheduledAt, &attemptedAt, &j.AttemptedBy, &finalizedAt, &errorsJSON, &meta,
		&j.UniqueKey, &uniqueStates, &createdAt, &deps, &depFailure, &tags}, extra...)
	if err := r.Scan(dest...); err != nil {
		return nil, wrapErr(err)
	}
	var err error
	if j.RunID, err = uuidOf(runID); err != nil {
		return nil, fmt.Errorf("sqlite: job %d: run id: %w", j.ID, err)
	}
	j.Args, j.Meta = args, meta
	j.State = acidic.JobState(state)
	j.ScheduledAt, j.CreatedAt = timeOf(scheduledAt), timeOf(createdAt)
	j.AttemptedAt, j.FinalizedAt = nullTimeOf(attemptedAt), nullTimeOf(finalizedAt)
	j.UniqueStates = statebits.Set(uniqueStates)
	j.DependencyFailure = depFailure
	if j.Tags, err = tagsOf(tags); err != nil {
		return nil, fmt.Errorf("sqlite: job %d: decode tags: %w", j.ID, err)
	}
	if j.DependsOn, err = dependsOn(deps); err != nil {
		return nil, fmt.Errorf("sqlite: job %d: decode depends_on: %w", j.ID, err)
	}
	if len(errorsJSON) > 2 && !strings.HasPrefix(string(errorsJSON), "[]") {
		if err := json.Unmarshal(errorsJSON, &j.Errors); err != nil {
			return nil, fmt.Errorf("sqlite: job %d: decode error history: %w", j.ID, err)
		}
	}
	return &j, nil
}

// collectJobs reads every job of rows and closes them.
func collectJobs(rows rowset, err error) ([]*acidic.Job, error) {
	if err != nil {
		return nil, wrapErr(err)
	}
	defer rows.Close()
	var out []*acidic.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, wrapErr(rows.Err())
}

// runRow receives the run columns ({run_columns}) of a row.
type runRow struct {
	id, parent                           []byte
	key, workflow, state, queue, rp, h   string
	lockedBy, parentStep, errText        string
	args, attrs, result                  []byte
	cursor                               int64
	awaiting                             int
	createdAt, updatedAt                 int64
	lockedAt, lastRunAt, finished, settl sql.NullInt64
	tags                                 sql.NullString
}

func (r *runRow) dest() []any {
	return []any{&r.id, &r.key, &r.workflow, &r.args, &r.state, &r.queue, &r.rp,
		&r.h, &r.attrs, &r.cursor, &r.lockedBy, &r.lockedAt, &r.lastRunAt, &r.parent,
		&r.parentStep, &r.awaiting, &r.errText, &r.result, &r.createdAt, &r.updatedAt, &r.finished, &r.settl, &r.tags}
}

func (r *runRow) run() (*acidic.Run, error) {
	id, err := uuidOf(r.id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: run id: %w", err)
	}
	parent, err := uuidOf(r.parent)
	if err != nil {
		return nil, fmt.Errorf("sqlite: run %s: parent id: %w", id, err)
	}
	tags, err := tagsOf(r.tags)
	if err != nil {
		return nil, fmt.Errorf("sqlite: run %s: decode tags: %w", id, err)
	}
	return &acidic.Run{
		Tags:           tags,
		ID:             id,
		IdempotencyKey: r.key,
		Workflow:       r.workflow,
		Args:           r.args,
		State:          acidic.RunState(r.state),
		Queue:          r.queue,
		RecoveryPoint:  r.rp,
		DefinitionHash: r.h,
		Attrs:          r.attrs,
		Cursor:         r.cursor,
		LockedBy:       r.lockedBy,
		LockedAt:       nullTimeOf(r.lockedAt),
		LastRunAt:      nullTimeOf(r.lastRunAt),
		ParentRunID:    parent,
		ParentStep:     r.parentStep,
		Awaiting:       r.awaiting,
		Error:          r.errText,
		Result:         r.result,
		CreatedAt:      timeOf(r.createdAt),
		UpdatedAt:      timeOf(r.updatedAt),
		FinishedAt:     nullTimeOf(r.finished),
		SettledAt:      nullTimeOf(r.settl),
	}, nil
}

func scanRun(r row) (*acidic.Run, error) {
	var rr runRow
	if err := r.Scan(rr.dest()...); err != nil {
		return nil, wrapErr(err)
	}
	return rr.run()
}

// collectRuns reads every run of rows and closes them.
func collectRuns(rows rowset, err error) ([]*acidic.Run, error) {
	if err != nil {
		return nil, wrapErr(err)
	}
	defer rows.Close()
	var out []*acidic.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, wrapErr(rows.Err())
}

func scanOutbox(r row) (*acidic.OutboxMessage, error) {
	var (
		m             acidic.OutboxMessage
		runID         []byte
		next, created int64
		delivered     sql.NullInt64
	)
	var payload, meta []byte
	if err := r.Scan(&m.ID, &m.Topic, &m.Key, &payload, &runID, &m.Attempts, &next,
		&delivered, &m.LastError, &created, &meta); err != nil {
		return nil, wrapErr(err)
	}
	var err error
	if m.RunID, err = uuidOf(runID); err != nil {
		return nil, fmt.Errorf("sqlite: outbox message %d: run id: %w", m.ID, err)
	}
	m.Payload = payload
	if len(meta) > 0 {
		m.Meta = meta
	}
	m.NextAttemptAt, m.CreatedAt = timeOf(next), timeOf(created)
	m.DeliveredAt = nullTimeOf(delivered)
	return &m, nil
}

// collectOutbox reads every message of rows and closes them.
func collectOutbox(rows rowset, err error) ([]*acidic.OutboxMessage, error) {
	if err != nil {
		return nil, wrapErr(err)
	}
	defer rows.Close()
	var out []*acidic.OutboxMessage
	for rows.Next() {
		m, err := scanOutbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, wrapErr(rows.Err())
}

// tagsParam passes tags as a JSON array; none (nil or empty) as NULL, which
// the column stores for an untagged row and the list filters read as "any".
func tagsParam(tags []string) any {
	if len(tags) == 0 {
		return nil
	}
	return stringList(tags)
}

// tagsOf reads a tags column; nil for NULL.
func tagsOf(s sql.NullString) ([]string, error) {
	if !s.Valid {
		return nil, nil
	}
	var tags []string
	if err := json.Unmarshal([]byte(s.String), &tags); err != nil {
		return nil, err
	}
	return tags, nil
}
