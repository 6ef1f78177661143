package otelacidic

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/events"
	"github.com/acidic-go/acidic/storage"
)

// instruments are the metrics the instrumentation records.
type instruments struct {
	meter       metric.Meter
	jobs        metric.Int64Counter
	jobWait     metric.Float64Histogram
	jobDuration metric.Float64Histogram
	rescues     metric.Int64Counter
	steps       metric.Int64Counter
	stepDur     metric.Float64Histogram
	serRetries  metric.Int64Counter
	runs        metric.Int64Counter

	// The attribute sets of the measurements, made once per combination
	// (attribute.NewSet sorts and allocates) with the options that carry
	// them, so that recording an event allocates nothing.
	jobAttrs, rescueAttrs, stepAttrs, retryAttrs, runAttrs *cache[attrKey, attrOpts]
	waitAttrs                                              *cache[attrKey, attrOpts]
}

// attrKey is the attribute values of one measurement, in the order of
// the instrument's attribute keys.
type attrKey [3]string

// attrOpts is an attribute set as the options of Add and Record.
type attrOpts struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

// attrCache makes attrOpts of keys (as many as the key's values used).
func attrCache(keys ...attribute.Key) *cache[attrKey, attrOpts] {
	return newCache(func(v attrKey) attrOpts {
		kvs := make([]attribute.KeyValue, len(keys))
		for i, k := range keys {
			kvs[i] = k.String(v[i])
		}
		o := metric.WithAttributeSet(attribute.NewSet(kvs...))
		return attrOpts{add: []metric.AddOption{o}, record: []metric.RecordOption{o}}
	})
}

// Metric names (Prometheus shows them with dots as underscores and the
// unit as a suffix: acidic_jobs_total, acidic_job_wait_seconds, …).
const (
	MetricJobs           = "acidic.jobs"
	MetricJobWait        = "acidic.job.wait"
	MetricJobDuration    = "acidic.job.duration"
	MetricRescues        = "acidic.job.rescues"
	MetricSteps          = "acidic.steps"
	MetricStepDuration   = "acidic.step.duration"
	MetricSerRetries     = "acidic.step.serialization_retries"
	MetricRuns           = "acidic.runs.finished"
	MetricQueueDepth     = "acidic.queue.depth"
	MetricQueueOldestAge = "acidic.queue.oldest_age"
	MetricOutboxBacklog  = "acidic.outbox.backlog"
)

// durations are histogram bounds in seconds, from 1ms to 5 minutes.
var durations = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

func newInstruments(m metric.Meter) (*instruments, error) {
	in := &instruments{meter: m,
		jobAttrs:    attrCache(AttrQueue, AttrJobKind, AttrOutcome),
		waitAttrs:   attrCache(AttrQueue, AttrJobKind),
		rescueAttrs: attrCache(AttrQueue, AttrJobKind, AttrState),
		stepAttrs:   attrCache(AttrWorkflow, AttrStep, AttrOutcome),
		retryAttrs:  attrCache(AttrWorkflow, AttrStep),
		runAttrs:    attrCache(AttrWorkflow, AttrState),
	}
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	var err error
	in.jobs, err = m.Int64Counter(MetricJobs, metric.WithDescription("Job attempts by outcome (completed, failed, snoozed, cancelled, discarded)."), metric.WithUnit("{attempt}"))
	add(err)
	in.jobWait, err = m.Float64Histogram(MetricJobWait, metric.WithDescription("How long a job waited for a worker, from its due time to its attempt's start."), metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(durations...))
	add(err)
	in.jobDuration, err = m.Float64Histogram(MetricJobDuration, metric.WithDescription("How long a job attempt ran."), metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(durations...))
	add(err)
	in.rescues, err = m.Int64Counter(MetricRescues, metric.WithDescription("Jobs rescued after their worker stopped heartbeating."), metric.WithUnit("{job}"))
	add(err)
	in.steps, err = m.Int64Counter(MetricSteps, metric.WithDescription("Steps by outcome (committed, failed)."), metric.WithUnit("{step}"))
	add(err)
	in.stepDur, err = m.Float64Histogram(MetricStepDuration, metric.WithDescription("How long a step ran, its transaction included."), metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(durations...))
	add(err)
	in.serRetries, err = m.Int64Counter(MetricSerRetries, metric.WithDescription("Step transactions run again after a serialization failure."), metric.WithUnit("{retry}"))
	add(err)
	in.runs, err = m.Int64Counter(MetricRuns, metric.WithDescription("Runs that reached a final state, by state."), metric.WithUnit("{run}"))
	add(err)
	return in, errors.Join(errs...)
}

// record turns one event into measurements. It runs inline on the engine's
// goroutine (a Func subscription): it only adds to instruments.
func (in *instruments) record(ev events.Event) {
	ctx := context.Background()
	switch ev.Kind {
	case events.JobCompleted, events.JobFailed, events.JobSnoozed, events.JobCancelled, events.JobDiscarded:
		attrs := in.jobAttrs.get(attrKey{ev.Queue, ev.JobKind, strings.TrimPrefix(string(ev.Kind), "job.")})
		in.jobs.Add(ctx, 1, attrs.add...)
		in.jobDuration.Record(ctx, ev.Duration.Seconds(), attrs.record...)
		in.jobWait.Record(ctx, ev.Wait.Seconds(), in.waitAttrs.get(attrKey{ev.Queue, ev.JobKind}).record...)
	case events.JobRescued:
		in.rescues.Add(ctx, 1, in.rescueAttrs.get(attrKey{ev.Queue, ev.JobKind, string(ev.JobState)}).add...)
	case events.StepCommitted, events.StepFailed:
		attrs := in.stepAttrs.get(attrKey{ev.Workflow, ev.Step, strings.TrimPrefix(string(ev.Kind), "step.")})
		in.steps.Add(ctx, 1, attrs.add...)
		in.stepDur.Record(ctx, ev.Duration.Seconds(), attrs.record...)
	case events.StepRetried:
		in.serRetries.Add(ctx, 1, in.retryAttrs.get(attrKey{ev.Workflow, ev.Step}).add...)
	case events.RunFinished:
		in.runs.Add(ctx, 1, in.runAttrs.get(attrKey{ev.Workflow, string(ev.RunState)}).add...)
	}
}

// OutboxBacklogCap bounds the outbox backlog gauge: it counts undelivered
// messages up to this many (the driver has no count; a scrape reads at most
// this many rows).
const OutboxBacklogCap = 10000

// Observe records metrics from the events of bus (an engine's or a queue
// client's Events), and, when drv is not nil, registers the gauges read
// from the store at each collection: queue depth by queue and state
// (JobStats), the oldest due job's age by queue (JobQueueAges, when drv has
// it) and the outbox backlog. It returns a function that stops both.
// Without metrics (DisableMetrics) it does nothing.
func (in *Instrumentation) Observe(bus *events.Bus, drv storage.Driver) (stop func(), err error) {
	if in.m == nil {
		return func() {}, nil
	}
	sub := bus.Subscribe(events.Options{Func: in.m.record})
	if drv == nil {
		return sub.Close, nil
	}
	reg, err := in.registerGauges(drv)
	if err != nil {
		sub.Close()
		return nil, err
	}
	return func() {
		sub.Close()
		_ = reg.Unregister()
	}, nil
}

// registerGauges registers the observable gauges that read the store.
func (in *Instrumentation) registerGauges(drv storage.Driver) (metric.Registration, error) {
	m := in.m.meter
	depth, err := m.Int64ObservableGauge(MetricQueueDepth, metric.WithDescription("Jobs by queue and state."), metric.WithUnit("{job}"))
	if err != nil {
		return nil, err
	}
	age, err := m.Float64ObservableGauge(MetricQueueOldestAge, metric.WithDescription("How long the oldest job that could run now has waited, by queue."), metric.WithUnit("s"))
	if err != nil {
		return nil, err
	}
	backlog, err := m.Int64ObservableGauge(MetricOutboxBacklog, metric.WithDescription("Undelivered outbox messages (counted up to 10000)."), metric.WithUnit("{message}"))
	if err != nil {
		return nil, err
	}
	return m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var errs []error
		stats, err := drv.JobStats(ctx)
		errs = append(errs, err)
		for _, s := range stats {
			if s.State == acidic.JobCompleted || s.State == acidic.JobCancelled || s.State == acidic.JobDiscarded {
				continue // finished rows wait for pruning; they are no queue's depth
			}
			o.ObserveInt64(depth, s.Count, metric.WithAttributes(AttrQueue.String(s.Queue), AttrState.String(string(s.State))))
		}
		if ages, ok := drv.(storage.JobAges); ok {
			qa, err := ages.JobQueueAges(ctx, storage.JobQueueAgesParams{})
			errs = append(errs, err)
			for _, a := range qa {
				o.ObserveFloat64(age, a.OldestAge.Seconds(), metric.WithAttributes(AttrQueue.String(a.Queue)))
			}
		}
		msgs, err := drv.OutboxList(ctx, storage.OutboxListParams{PendingOnly: true, Limit: OutboxBacklogCap})
		errs = append(errs, err)
		if err == nil {
			o.ObserveInt64(backlog, int64(len(msgs)))
		}
		return errors.Join(errs...)
	}, depth, age, backlog)
}
