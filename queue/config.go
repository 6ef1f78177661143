package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// QueueConfig tunes one queue a client works.
type QueueConfig struct {
	// MaxWorkers is how many jobs of this queue the client runs at once. Required, at least 1.
	MaxWorkers int
	// Limits caps the jobs of this queue running and starting across all
	// clients (see QueueLimits); the zero value sets none.
	Limits QueueLimits
}

// Config configures a Client. A client that only enqueues needs no Queues;
// it needs Workers when the kinds it enqueues have options (KindOptions).
type Config struct {
	// Workers defines the job kinds: the functions that work them and the
	// options every enqueue of them through this client honours.
	Workers *Workers
	// Queues the client works, with their concurrency. Empty for an insert-only client.
	Queues map[string]QueueConfig
	// ID names this client in jobs' attempted_by, and as a node (its row in
	// the nodes table, the leader's). Default: host-pid-random. It must be a
	// valid name (storage.CheckName), as must every queue in Queues. Give
	// every started client its own: two clients with one ID share one node
	// row and one lead.
	ID string
	// Logger receives the client's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock used to schedule jobs. Default time.Now.
	Now func() time.Time
	// EndedFunc, when set, is called inside every transaction that ends
	// jobs for good other than by completion: discarded (attempts
	// exhausted, a Discard result, an unknown kind, a panic on the last
	// attempt, the rescue of a last attempt) or cancelled (a Cancel result,
	// Cancel by an operator), with the jobs as that transaction left them.
	// Its writes commit with the job's end, or not at all: an error rolls
	// the transaction back, and the write is tried again like any failed
	// bookkeeping write. It may so run more than once for one end, and its
	// transaction may still roll back after it returned: it must act only
	// through tx. Package workflow uses it to end a run with the job
	// that carried it. Dependents of a graph job cancelled through its
	// dependencies are not passed. A client without it neither claims,
	// rescues nor cancels jobs that carry workflow runs: it could not end
	// their runs with them (work those queues with a workflow.Engine).
	EndedFunc func(ctx context.Context, tx storage.Tx, jobs []*acidic.Job) error
	// Periodic lists jobs to enqueue on a schedule (see PeriodicJob and
	// AddPeriodic): a started client writes them to the database and
	// enqueues each period's job, once across all clients. New refuses a
	// bad one with the error AddPeriodic would return.
	Periodic []PeriodicJob
	// Middleware wraps every job attempt this client works, the first
	// outermost; see JobMiddleware. None by default.
	Middleware []JobMiddleware
	// EnqueueHooks see every job enqueued through this client; see
	// EnqueueHook. None by default.
	EnqueueHooks []EnqueueHook

	// PollInterval is how often an idle queue looks for work when no
	// notification arrives (notifications may be lost while the listener
	// reconnects, and scheduled jobs become due silently). Default 1s.
	PollInterval time.Duration
	// FetchCooldown is the least time between two fetches of one queue, so a
	// burst of notifications makes one fetch. Default 2ms.
	FetchCooldown time.Duration
	// HeartbeatInterval is how often the client refreshes the heartbeat of
	// the jobs it runs. Default 2s.
	HeartbeatInterval time.Duration
	// RescueAfter is how long a running job may go without a heartbeat before
	// the leading client rescues it (retryable, or discarded when out of
	// attempts).
	// Must exceed HeartbeatInterval; default 30s.
	RescueAfter time.Duration
	// MaintenanceInterval is how often the client rescues and prunes jobs
	// while it leads its schema's nodes (see LeaderLease). Default 5s.
	MaintenanceInterval time.Duration
	// LeaderLease is the term of the lead this client takes when it is
	// elected leader of its schema's nodes: only the leader runs the
	// maintenance. The leader renews its lease every LeaderLease/3; when
	// it dies, another node takes the lead once the lease runs out, so
	// nobody rescues jobs or prunes for up to this long (keep it well under
	// RescueAfter). A client that stops cleanly hands the lead over at
	// once. At least 1ms; default 15s.
	LeaderLease time.Duration
	// Retention is how long finished jobs are kept, per final state, and
	// which queues keep theirs for ever. The zero value keeps completed and
	// cancelled jobs 24h and discarded jobs 7 days (see Retention).
	Retention Retention
	// MaintainFunc, when set, runs in every maintenance pass (Maintain),
	// after the jobs are pruned; an error it returns is logged.
	// Package workflow prunes finished runs with it, so runs are pruned
	// where jobs are.
	MaintainFunc func(ctx context.Context) error
	// StopTimeout is how long Stop waits for running jobs when its context
	// has no deadline: past it, Stop cancels their contexts as it does at a
	// deadline, waits up to 5 seconds more for them to record their
	// outcomes, and returns ErrStopTimeout (or a *JobsRunningError naming
	// the jobs that ignored the cancellation). A context with a deadline
	// decides alone. Default 20s, so that Stop, grace included, returns
	// within the 30 seconds Kubernetes gives a stopping pod by default;
	// raise it (or pass Stop a context with a deadline) when jobs need
	// longer to finish.
	StopTimeout time.Duration
	// CompleteBatchSize caps how many completions are written in one
	// statement. Default 500.
	CompleteBatchSize int
	// CompleteFlushInterval is how long a completion may wait for others to
	// share its statement. Default 5ms. The worker's slot is free as soon as
	// the work function returns; only the job row's "completed" waits, so a
	// longer window costs no throughput and makes fewer, larger statements
	// under load (see docs/performance.md: 1ms left 1 to 4 jobs per statement
	// in the workflow benchmark).
	// Jobs that wait for a completed job (graphs) are released when its
	// completion is written, so each level of a graph waits up to this long.
	CompleteFlushInterval time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if c.ID == "" {
		host, _ := os.Hostname()
		var b [3]byte
		_, _ = rand.Read(b[:])
		c.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.PollInterval, time.Second)
	def(&c.FetchCooldown, 2*time.Millisecond)
	def(&c.HeartbeatInterval, 2*time.Second)
	def(&c.RescueAfter, 30*time.Second)
	def(&c.MaintenanceInterval, 5*time.Second)
	def(&c.LeaderLease, 15*time.Second)
	def(&c.CompleteFlushInterval, 5*time.Millisecond)
	def(&c.StopTimeout, 20*time.Second)
	if c.CompleteBatchSize == 0 {
		c.CompleteBatchSize = 500
	}
	for _, d := range []time.Duration{c.PollInterval, c.FetchCooldown, c.HeartbeatInterval, c.RescueAfter, c.MaintenanceInterval, c.CompleteFlushInterval, c.StopTimeout, c.LeaderLease} {
		if d < 0 {
			return c, fmt.Errorf("%w: negative duration in Config", ErrInvalid)
		}
	}
	if c.LeaderLease < time.Millisecond {
		return c, fmt.Errorf("%w: LeaderLease %s is under a millisecond", ErrInvalid, c.LeaderLease)
	}
	var err error
	if c.Retention, err = c.Retention.withDefaults(); err != nil {
		return c, err
	}
	if c.RescueAfter <= c.HeartbeatInterval {
		return c, fmt.Errorf("%w: RescueAfter (%s) must exceed HeartbeatInterval (%s)", ErrInvalid, c.RescueAfter, c.HeartbeatInterval)
	}
	if err := storage.CheckName("client ID", c.ID); err != nil {
		return c, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	for name, q := range c.Queues {
		if name == "" {
			return c, fmt.Errorf("%w: empty queue name", ErrInvalid)
		}
		if err := storage.CheckName("queue", name); err != nil {
			return c, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if q.MaxWorkers < 1 {
			return c, fmt.Errorf("%w: queue %q: MaxWorkers %d must be at least 1", ErrInvalid, name, q.MaxWorkers)
		}
		if q.Limits.set() {
			if err := q.Limits.check(name); err != nil {
				return c, err
			}
		}
	}
	if len(c.Queues) > 0 && c.Workers == nil {
		return c, fmt.Errorf("%w: a client that works queues needs Workers", ErrInvalid)
	}
	return c, nil
}
