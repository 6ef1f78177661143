package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/workflow"
)

const (
	probeKind = "bench.probe"
	warmKind  = "bench.warm"
	// idlePause separates two idle samples: long enough for the previous
	// job's completion to be written and the engine to be idle again.
	idlePause = 20 * time.Millisecond
	// idlePoll is the PollInterval of the idle measurements: only a
	// notification can wake the queue in time.
	idlePoll      = 10 * time.Second
	sampleTimeout = 15 * time.Second
)

// Scenario 5: enqueue-to-start latency of a job and commit latency of a
// step, on an idle engine and under a steady load.
func (b *bench) latencyScenario(ctx context.Context) error {
	w := b.cfg.maxWorkers()
	idleTarget := map[float64]*target{50: atMost(10), 99: atMost(50)}

	lat, err := b.idleJobLatency(ctx, w)
	if err != nil {
		return fmt.Errorf("idle enqueue-to-start: %w", err)
	}
	jobTarget := idleTarget
	if b.lite != nil {
		jobTarget = map[float64]*target{50: atMost(5), 99: atMost(50)} // issue 15
	}
	b.addPercentiles("idle: enqueue-to-start", w, lat, jobTarget, strconv.Itoa(len(lat))+" jobs, one at a time")

	lat, err = b.idleStepLatency(ctx, w)
	if err != nil {
		return fmt.Errorf("idle step commit: %w", err)
	}
	b.addPercentiles("idle: step commit", w, lat, idleTarget, strconv.Itoa(len(lat))+" steps, one run at a time")

	// The load is half of what the engine did flat out in scenarios 2 and
	// 3 (a fixed rate when they did not run), so the queue stays short and
	// the figure is about the engine, not about a backlog.
	rate := b.jobsPerSec[w] / 2
	if rate == 0 {
		rate = 1000
	}
	lat, achieved, err := b.loadJobLatency(ctx, w, rate)
	if err != nil {
		return fmt.Errorf("enqueue-to-start under load: %w", err)
	}
	b.addPercentiles(fmt.Sprintf("load %.0f jobs/s: enqueue-to-start", achieved), w, lat, nil, strconv.Itoa(len(lat))+" jobs")

	rate = b.runsPerSec[w] / 2
	if rate == 0 {
		rate = 200
	}
	lat, achieved, err = b.loadStepLatency(ctx, w, rate)
	if err != nil {
		return fmt.Errorf("step commit under load: %w", err)
	}
	b.addPercentiles(fmt.Sprintf("load %.0f runs/s: step commit", achieved), w, lat, nil, strconv.Itoa(len(lat))+" steps")
	return nil
}

func (b *bench) addPercentiles(figure string, w int, lat []time.Duration, targets map[float64]*target, note string) {
	slices.Sort(lat)
	for _, p := range []float64{50, 95, 99} {
		v := ms(percentile(lat, p))
		b.tbl.add("5 latency", figure+" p"+strconv.Itoa(int(p)), w, v, "ms", targets[p], note)
	}
	b.logf("latency: %s: p50 %.2f ms, p99 %.2f ms (%d samples)", figure, ms(percentile(lat, 50)), ms(percentile(lat, 99)), len(lat))
}

// starts receives (job id, time its work function started) without ever
// blocking a worker.
type starts chan jobStart

type jobStart struct {
	id int64
	at time.Time
}

func (s starts) record(id int64) {
	select {
	case s <- jobStart{id, time.Now()}:
	default:
	}
}

// await waits for job id to start, skipping others (leftover warm-ups).
func (s starts) await(ctx context.Context, id int64, timeout time.Duration) (time.Time, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case st := <-s:
			if st.id == id {
				return st.at, nil
			}
		case <-deadline.C:
			return time.Time{}, fmt.Errorf("job %d did not start within %s", id, timeout)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// warmListener enqueues warm-up jobs until five in a row start within
// 250ms: the client's listener (which connects in the background after
// Start) is up, and connections and prepared statements are warm.
func warmListener(ctx context.Context, c *queue.Client, started starts) error {
	inARow := 0
	for range 200 {
		job, err := c.Enqueue(ctx, warmKind, nil, queue.EnqueueOptions{})
		if err != nil {
			return err
		}
		if _, err := started.await(ctx, job.ID, 250*time.Millisecond); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			inARow = 0
			continue
		}
		if inARow++; inARow == 5 {
			time.Sleep(idlePause)
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return errors.New("warm-up jobs never started promptly: is LISTEN/NOTIFY working?")
}

// probeWorkers registers the probe and warm-up kinds, both reporting to
// started.
func probeWorkers(started starts) (*queue.Workers, error) {
	ws := queue.NewWorkers()
	record := func(_ context.Context, job *acidic.Job) error { started.record(job.ID); return nil }
	if err := ws.Handle(probeKind, record, queue.KindOptions{}); err != nil {
		return nil, err
	}
	return ws, ws.Handle(warmKind, record, queue.KindOptions{})
}

// idleJobLatency enqueues jobs one at a time, with a pause between them,
// and measures from Enqueue returning to the work function starting.
func (b *bench) idleJobLatency(ctx context.Context, w int) ([]time.Duration, error) {
	if err := b.reset(ctx); err != nil {
		return nil, err
	}
	started := make(starts, 1024)
	ws, err := probeWorkers(started)
	if err != nil {
		return nil, err
	}
	cfg := b.queueConfig(ws, w)
	cfg.PollInterval = idlePoll
	c, err := queue.New(b.drv, cfg)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	defer func() { _ = stopClient(ctx, c.Stop) }()
	if err := warmListener(ctx, c, started); err != nil {
		return nil, err
	}
	out := make([]time.Duration, 0, b.cfg.samples)
	for range b.cfg.samples {
		job, err := c.Enqueue(ctx, probeKind, nil, queue.EnqueueOptions{})
		returned := time.Now()
		if err != nil {
			return nil, err
		}
		at, err := started.await(ctx, job.ID, sampleTimeout)
		if err != nil {
			return nil, err
		}
		out = append(out, max(at.Sub(returned), 0))
		time.Sleep(idlePause)
	}
	return out, nil
}

// stepClock records when each step of each run started. The time between
// two consecutive step starts of a run is one step transaction: the step's
// write and COMMIT, then the next BEGIN.
type stepClock struct {
	mu   sync.Mutex
	runs map[uuid.UUID]*[stepsPerWF]time.Time
	last chan uuid.UUID // the last step of a run started
	done atomic.Int64
}

func newStepClock() *stepClock {
	return &stepClock{runs: map[uuid.UUID]*[stepsPerWF]time.Time{}, last: make(chan uuid.UUID, 4096)}
}

func (k *stepClock) workflow() *workflow.Workflow[emptyArgs, emptyState] {
	list := make([]steps.Step[emptyArgs, emptyState], stepsPerWF)
	for i := range list {
		list[i] = steps.Do("s"+strconv.Itoa(i+1), func(ctx context.Context, sc *steps.Context[emptyArgs, emptyState]) error {
			now := time.Now()
			k.mu.Lock()
			t := k.runs[sc.RunID()]
			if t == nil {
				t = new([stepsPerWF]time.Time)
				k.runs[sc.RunID()] = t
			}
			first := t[i].IsZero()
			t[i] = now // a retried step counts from its last try
			k.mu.Unlock()
			if i == stepsPerWF-1 && first {
				k.done.Add(1)
				select {
				case k.last <- sc.RunID():
				default:
				}
			}
			return nil
		})
	}
	return workflow.Define("bench.clocked", workflow.Options{}, list...)
}

// deltas returns the step commit times of every run whose steps all ran.
func (k *stepClock) deltas() []time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []time.Duration
	for _, t := range k.runs {
		if t[stepsPerWF-1].IsZero() {
			continue
		}
		for i := 1; i < stepsPerWF; i++ {
			out = append(out, t[i].Sub(t[i-1]))
		}
	}
	return out
}

// clockedEngine starts an engine running the clocked workflow (and the
// warm-up kind), with its listener up.
func (b *bench) clockedEngine(ctx context.Context, w int, poll time.Duration) (*workflow.Engine, *stepClock, error) {
	if err := b.reset(ctx); err != nil {
		return nil, nil, err
	}
	clock := newStepClock()
	started := make(starts, 1024)
	ws, err := probeWorkers(started)
	if err != nil {
		return nil, nil, err
	}
	e, err := b.newEngine(w, func(c *workflow.Config) {
		c.Queue.Workers = ws
		c.Queue.PollInterval = poll
	}, clock.workflow())
	if err != nil {
		return nil, nil, err
	}
	if err := e.Start(ctx); err != nil {
		return nil, nil, err
	}
	if err := warmListener(ctx, e.Queue(), started); err != nil {
		_ = stopClient(ctx, e.Stop)
		return nil, nil, err
	}
	return e, clock, nil
}

// idleStepLatency runs workflows of three empty steps one at a time.
func (b *bench) idleStepLatency(ctx context.Context, w int) ([]time.Duration, error) {
	e, clock, err := b.clockedEngine(ctx, w, idlePoll)
	if err != nil {
		return nil, err
	}
	defer func() { _ = stopClient(ctx, e.Stop) }()
	runs := max(1, b.cfg.samples/(stepsPerWF-1))
	for range runs {
		res, err := e.Enqueue(ctx, "bench.clocked", emptyArgs{}, workflow.EnqueueOptions{})
		if err != nil {
			return nil, err
		}
		if err := awaitRun(ctx, clock.last, res.Run.ID); err != nil {
			return nil, err
		}
		time.Sleep(idlePause) // the last step commits; the engine idles
	}
	return clock.deltas(), nil
}

func awaitRun(ctx context.Context, last <-chan uuid.UUID, id uuid.UUID) error {
	deadline := time.NewTimer(sampleTimeout)
	defer deadline.Stop()
	for {
		select {
		case got := <-last:
			if got == id {
				return nil
			}
		case <-deadline.C:
			return fmt.Errorf("run %s did not reach its last step within %s", id, sampleTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// openLoop calls fn at rate per second for d, from enough goroutines that a
// slow call does not hold the next back (arrivals do not wait for the
// engine, as in production). It returns how many calls it made.
func openLoop(ctx context.Context, rate float64, d time.Duration, goroutines int, fn func() error) (int, error) {
	tokens := make(chan struct{}, 100000)
	var sent int
	go func() {
		defer close(tokens)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		t0 := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				el := now.Sub(t0)
				if el > d {
					el = d
				}
				for due := int(rate * el.Seconds()); sent < due; sent++ {
					tokens <- struct{}{}
				}
				if el >= d {
					return
				}
			}
		}
	}()
	var calls atomic.Int64
	err := parallel(goroutines, func(int) error {
		for range tokens {
			if err := fn(); err != nil {
				for range tokens { // let the pacer finish
				}
				return err
			}
			calls.Add(1)
		}
		return nil
	})
	if err == nil {
		err = ctx.Err()
	}
	return int(calls.Load()), err
}

// loadJobLatency enqueues jobs at rate per second while w workers work them
// and measures each one's enqueue-to-start.
func (b *bench) loadJobLatency(ctx context.Context, w int, rate float64) ([]time.Duration, float64, error) {
	if err := b.reset(ctx); err != nil {
		return nil, 0, err
	}
	var mu sync.Mutex
	returned := map[int64]time.Time{}
	begun := map[int64]time.Time{}
	started := make(starts, 1024)
	ws := queue.NewWorkers()
	var worked atomic.Int64
	err := errors.Join(
		ws.Handle(warmKind, func(_ context.Context, job *acidic.Job) error { started.record(job.ID); return nil }, queue.KindOptions{}),
		ws.Handle(probeKind, func(_ context.Context, job *acidic.Job) error {
			now := time.Now()
			mu.Lock()
			begun[job.ID] = now
			mu.Unlock()
			worked.Add(1)
			return nil
		}, queue.KindOptions{}))
	if err != nil {
		return nil, 0, err
	}
	c, err := queue.New(b.drv, b.queueConfig(ws, w))
	if err != nil {
		return nil, 0, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, 0, err
	}
	defer func() { _ = stopClient(ctx, c.Stop) }()
	if err := warmListener(ctx, c, started); err != nil {
		return nil, 0, err
	}
	if err := b.warm(ctx, w+8); err != nil {
		return nil, 0, err
	}
	t0 := time.Now()
	n, err := openLoop(ctx, rate, b.cfg.loadFor, 8, func() error {
		job, err := c.Enqueue(ctx, probeKind, nil, queue.EnqueueOptions{})
		now := time.Now()
		if err != nil {
			return err
		}
		mu.Lock()
		returned[job.ID] = now
		mu.Unlock()
		return nil
	})
	achieved := float64(n) / time.Since(t0).Seconds()
	if err != nil {
		return nil, 0, err
	}
	if err := waitUntil(ctx, func() bool { return worked.Load() >= int64(n) }, worked.Load, "load jobs started"); err != nil {
		return nil, 0, err
	}
	mu.Lock()
	defer mu.Unlock()
	out := make([]time.Duration, 0, n)
	for id, r := range returned {
		if s, ok := begun[id]; ok {
			out = append(out, max(s.Sub(r), 0))
		}
	}
	return out, achieved, nil
}

// loadStepLatency enqueues runs at rate per second while w workers execute
// them and measures every step transaction.
func (b *bench) loadStepLatency(ctx context.Context, w int, rate float64) ([]time.Duration, float64, error) {
	e, clock, err := b.clockedEngine(ctx, w, 0)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = stopClient(ctx, e.Stop) }()
	if err := b.warm(ctx, w+8); err != nil {
		return nil, 0, err
	}
	t0 := time.Now()
	n, err := openLoop(ctx, rate, b.cfg.loadFor, 8, func() error {
		_, err := e.Enqueue(ctx, "bench.clocked", emptyArgs{}, workflow.EnqueueOptions{})
		return err
	})
	achieved := float64(n) / time.Since(t0).Seconds()
	if err != nil {
		return nil, 0, err
	}
	if err := waitUntil(ctx, func() bool { return clock.done.Load() >= int64(n) }, clock.done.Load, "load runs finished"); err != nil {
		return nil, 0, err
	}
	return clock.deltas(), achieved, nil
}

// waitUntil polls cond, failing when ctx ends or progress stalls.
func waitUntil(ctx context.Context, cond func() bool, progress func() int64, what string) error {
	done := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if cond() {
				close(done)
				return
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return waitFor(ctx, done, progress, stall, what)
}
