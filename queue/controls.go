package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// Queue controls are set by operators for every node at once and kept in
// the database (storage.Controls), so a node that starts later obeys them
// too. The fetch statement itself claims nothing from a paused queue, so no
// fetch that starts after a pause committed takes a job of it, whatever a
// node has heard. Each producer also holds its queue's controls: paused, it
// sends no fetch at all; scaled, it fetches for the workers in force. A
// client reads the controls of the queues it works before its first fetch,
// then every PollInterval and whenever a hint on storage.TopicQueues (sent
// by every control's write, on commit) or a reconnection of its listener
// says it may have missed a change. The hint carries nothing: a forged one
// costs one read. Before the first read succeeds the client fetches
// nothing, so a restarted node never runs more workers than a queue's
// scale allows.

// controlsTimeout bounds one read of the controls.
const controlsTimeout = 5 * time.Second

// PauseQueue pauses a queue on every node until ResumeQueue: once it has
// returned, no fetch that starts on any node claims a job of the queue (a
// fetch already under way may still claim some), and every node stops
// sending fetches for it (at once where the notification arrives, within its
// PollInterval where it is lost). Jobs already running finish. The pause is
// stored, so clients started later obey it too. Pausing a paused queue
// changes nothing. It returns the queue's controls as written.
//
// A name storage cannot hold is ErrInvalid (also acidic.ErrInvalid); a
// queue no client ever worked, never controlled and without unfinished jobs
// is acidic.ErrUnknownQueue. Either way nothing is written.
func (c *Client) PauseQueue(ctx context.Context, queue string) (*acidic.QueueControl, error) {
	return c.setPaused(ctx, queue, true)
}

// ResumeQueue lets every node fetch a paused queue's jobs again, at once
// where the notification arrives (within PollInterval where it is lost).
// Resuming a queue that is not paused changes nothing. Errors are those of
// PauseQueue.
func (c *Client) ResumeQueue(ctx context.Context, queue string) (*acidic.QueueControl, error) {
	return c.setPaused(ctx, queue, false)
}

func (c *Client) setPaused(ctx context.Context, queue string, paused bool) (*acidic.QueueControl, error) {
	verb := "resume"
	if paused {
		verb = "pause"
	}
	if err := storage.CheckName("queue", queue); err != nil {
		return nil, fmt.Errorf("%w: %s queue: %w", ErrInvalid, verb, err)
	}
	ctl, err := c.drv.QueuePause(ctx, storage.QueuePauseParams{Queue: queue, Paused: paused})
	if err != nil {
		return nil, err
	}
	c.readControlsSoon()
	return ctl, nil
}

// ScaleQueue sets how many jobs of a queue each node runs at once, in place
// of its QueueConfig.MaxWorkers, until ResetQueueScale. Nodes apply it as
// they apply a pause (see PauseQueue): scaled up, they fetch more at once;
// scaled down, they fetch nothing until their running jobs of the queue
// (which finish undisturbed) are fewer than workers. It is stored, so
// clients started later obey it too. It returns the queue's controls as
// written.
//
// workers below 1 (or above storage.MaxQueueWorkers) and a name storage
// cannot hold are ErrInvalid (also acidic.ErrInvalid); an unknown queue is
// acidic.ErrUnknownQueue (see PauseQueue). Either way nothing is written.
func (c *Client) ScaleQueue(ctx context.Context, queue string, workers int) (*acidic.QueueControl, error) {
	if err := storage.CheckName("queue", queue); err != nil {
		return nil, fmt.Errorf("%w: scale queue: %w", ErrInvalid, err)
	}
	if workers < 1 || workers > storage.MaxQueueWorkers {
		return nil, fmt.Errorf("%w: %w: scale queue %q: workers %d must be from 1 to %d", ErrInvalid, acidic.ErrInvalid, queue, workers, storage.MaxQueueWorkers)
	}
	return c.scale(ctx, queue, workers)
}

// ResetQueueScale undoes ScaleQueue: each node goes back to running as many
// jobs of the queue at once as its own QueueConfig.MaxWorkers says. Errors
// are those of PauseQueue.
func (c *Client) ResetQueueScale(ctx context.Context, queue string) (*acidic.QueueControl, error) {
	if err := storage.CheckName("queue", queue); err != nil {
		return nil, fmt.Errorf("%w: scale queue: %w", ErrInvalid, err)
	}
	return c.scale(ctx, queue, 0)
}

func (c *Client) scale(ctx context.Context, queue string, workers int) (*acidic.QueueControl, error) {
	ctl, err := c.drv.QueueScale(ctx, storage.QueueScaleParams{Queue: queue, MaxWorkers: workers})
	if err != nil {
		return nil, err
	}
	c.readControlsSoon()
	return ctl, nil
}

// QueueControls returns the stored controls of the given queues, or of every
// known queue when none is given, by name. A known queue without controls
// (Paused false, MaxWorkers 0) is listed too; an unknown one is left out.
func (c *Client) QueueControls(ctx context.Context, queues ...string) ([]*acidic.QueueControl, error) {
	p := storage.QueueControlsParams{Queues: queues}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: queue controls: %w", ErrInvalid, err)
	}
	ctls, err := c.drv.QueueControls(ctx, p)
	if err != nil {
		return nil, err
	}
	return ctls, nil
}

// QueueState is how a started client works one of its queues right now.
type QueueState struct {
	Queue string
	// Paused: the client fetches nothing from the queue.
	Paused bool
	// MaxWorkers is how many jobs of the queue the client runs at once:
	// the queue's scale (ScaleQueue) or else its QueueConfig.MaxWorkers.
	MaxWorkers int
	// Running is how many jobs of the queue the client runs now; more than
	// MaxWorkers for a while after a scale down.
	Running int
	// ControlsReadAt is when the client last read the queue's controls
	// (on this machine's clock); zero before the first read, until which the
	// client fetches nothing from the queue.
	ControlsReadAt time.Time
}

// QueueState reports how the client works queue now, and false when the
// client does not work it or has not started yet. After Stop it reports
// what the client applied last.
func (c *Client) QueueState(queue string) (QueueState, bool) {
	c.mu.Lock()
	p := c.producers[queue]
	c.mu.Unlock()
	if p == nil {
		return QueueState{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return QueueState{Queue: queue, Paused: p.paused, MaxWorkers: p.max, Running: p.active, ControlsReadAt: p.controlsAt}, true
}

// readControlsSoon asks the controls loop to read the controls now. Any
// number of asks during a read make one more read.
func (c *Client) readControlsSoon() {
	select {
	case c.readKick <- struct{}{}:
	default:
	}
}

// controlsLoop reads the controls of the client's queues at once, then every
// PollInterval and whenever readControlsSoon asks, and applies them to the
// producers. Before each read it registers the queues (makes them known),
// until that succeeds once.
func (c *Client) controlsLoop(ctx context.Context) {
	c.mu.Lock()
	producers := make(map[string]*producer, len(c.producers))
	queues := make([]string, 0, len(c.producers))
	for q, p := range c.producers {
		producers[q] = p
		queues = append(queues, q)
	}
	c.mu.Unlock()
	registered, warned := false, false
	next := time.NewTimer(0)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-next.C:
		case <-c.readKick:
		}
		if !registered {
			// Only operators' controls of these queues need it (a queue
			// without jobs or registration is unknown to them), so a
			// failure holds nothing back; the next reads try again.
			err := c.drv.QueueRegister(ctx, storage.QueueRegisterParams{Queues: queues})
			registered = err == nil
			if err != nil && !warned && ctx.Err() == nil {
				c.cfg.Logger.Warn("queue: could not register the queues this client works", "err", err)
				warned = true
			}
		}
		c.readControls(ctx, queues, producers)
		next.Reset(c.cfg.PollInterval)
	}
}

// readControls reads the controls of queues and applies them to their
// producers; on failure the producers keep what they had.
func (c *Client) readControls(ctx context.Context, queues []string, producers map[string]*producer) {
	rctx, cancel := context.WithTimeout(ctx, controlsTimeout)
	ctls, err := c.drv.QueueControls(rctx, storage.QueueControlsParams{Queues: queues})
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			c.cfg.Logger.Warn("queue: could not read the queues' controls; keeping those last read (a queue never read fetches nothing)", "err", err)
		}
		return
	}
	now := time.Now()
	byQueue := make(map[string]*acidic.QueueControl, len(ctls))
	for _, ctl := range ctls {
		byQueue[ctl.Queue] = ctl
	}
	for q, p := range producers {
		paused, workers := false, p.configured
		if ctl := byQueue[q]; ctl != nil {
			paused = ctl.Paused
			if ctl.MaxWorkers > 0 {
				workers = ctl.MaxWorkers
			}
		}
		p.applyControls(paused, workers, now)
	}
}

// applyControls puts the queue's controls in force: a first read, a resume
// or more workers wake the producer to fetch; a pause or fewer workers take
// effect at its next fetch, which they hold back.
func (p *producer) applyControls(paused bool, workers int, at time.Time) {
	p.mu.Lock()
	first := p.controlsAt.IsZero()
	wasPaused, wasMax := p.paused, p.max
	p.paused, p.max, p.controlsAt = paused, workers, at
	p.mu.Unlock()
	if first && !paused && workers == p.configured {
		p.wakeUp()
		return
	}
	if !first && paused == wasPaused && workers == wasMax {
		return
	}
	state := "running"
	if paused {
		state = "paused"
	}
	p.c.cfg.Logger.Info("queue: controls in force", "queue", p.queue, "state", state, "workers", workers, "configured", p.configured)
	if !paused && (first || wasPaused || workers > wasMax) {
		p.wakeUp()
	}
}
