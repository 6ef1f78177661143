package otelacidic

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/workflow"
)

// ScopeName is the instrumentation scope of the tracer and the meter.
const ScopeName = "github.com/acidic-go/acidic/otelacidic"

// MetaKey is the key of the job Meta object that carries the trace
// context (W3C traceparent and tracestate, as the propagator writes them).
const MetaKey = "otel"

// Config configures the instrumentation. The zero value uses the global
// providers and the W3C trace context propagator.
type Config struct {
	// TracerProvider makes the spans. Default otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider makes the instruments. Default otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// Propagator writes the trace context into a job's Meta and reads it
	// back. Default propagation.TraceContext{}, whose traceparent and
	// tracestate are then written and read without a carrier (the same
	// bytes, fewer allocations); any other propagator goes through one.
	Propagator propagation.TextMapPropagator
	// DisableTraces and DisableMetrics turn one half off.
	DisableTraces, DisableMetrics bool
}

// Instrumentation holds the tracer and the instruments.
type Instrumentation struct {
	cfg    Config
	tracer trace.Tracer
	m      *instruments
	w3c    bool // cfg.Propagator is propagation.TraceContext: see w3c.go

	// Made once per kind or step, not per attempt.
	jobNames, runNames, stepNames *cache[string, string]
}

// The options of the spans, built once.
var (
	jobSpanStart  = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	stepSpanStart = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
)

// New returns the instrumentation; wire it with Configure (before the
// engine or client is made) and Observe (after).
func New(cfg Config) (*Instrumentation, error) {
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	if cfg.MeterProvider == nil {
		cfg.MeterProvider = otel.GetMeterProvider()
	}
	if cfg.Propagator == nil {
		cfg.Propagator = propagation.TraceContext{}
	}
	in := &Instrumentation{cfg: cfg, tracer: cfg.TracerProvider.Tracer(ScopeName), w3c: isW3C(cfg.Propagator),
		jobNames:  newCache(func(kind string) string { return "acidic.job " + kind }),
		runNames:  newCache(func(kind string) string { return "acidic.run " + kind }),
		stepNames: newCache(func(step string) string { return "acidic.step " + step }),
	}
	if !cfg.DisableMetrics {
		m, err := newInstruments(cfg.MeterProvider.Meter(ScopeName))
		if err != nil {
			return nil, fmt.Errorf("otelacidic: %w", err)
		}
		in.m = m
	}
	return in, nil
}

// Configure adds the instrumentation's middlewares, enqueue hook and
// publish hook to an engine's configuration: call it before
// workflow.NewEngine. (An outbox relay's Publisher is wrapped by
// ConfigureOutbox.)
func (in *Instrumentation) Configure(cfg *workflow.Config) {
	in.ConfigureQueue(&cfg.Queue)
	if !in.cfg.DisableTraces {
		cfg.StepMiddleware = append(cfg.StepMiddleware, in.StepMiddleware)
		cfg.PublishHooks = append(cfg.PublishHooks, in.PublishHook)
	}
}

// ConfigureQueue adds the job middleware and the enqueue hook to a queue
// client's configuration: call it before queue.New.
func (in *Instrumentation) ConfigureQueue(cfg *queue.Config) {
	if in.cfg.DisableTraces {
		return
	}
	cfg.Middleware = append(cfg.Middleware, in.JobMiddleware)
	cfg.EnqueueHooks = append(cfg.EnqueueHooks, in.EnqueueHook)
}

// EnqueueHook writes the trace context of ctx into the job's Meta, under
// MetaKey, when ctx carries a span: the member is added to Meta's object
// (or its value replaced, when Meta has one), the rest of Meta left as it
// is, byte for byte. Meta that is not a JSON object is left alone.
func (in *Instrumentation) EnqueueHook(ctx context.Context, kind string, meta json.RawMessage) (json.RawMessage, error) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil, nil
	}
	var buf [128]byte // a traceparent's object is 73 bytes
	value := in.inject(ctx, sc, buf[:0])
	if len(value) == 0 {
		return nil, nil
	}
	out, ok := withMember(meta, MetaKey, value)
	if !ok {
		return nil, nil // not an object: leave the user's Meta as it is
	}
	return out, nil
}

// extract returns ctx with the trace context carried in meta (a job's or
// an outbox message's Meta). It reads only Meta's MetaKey member (see
// metaCarrier): no decoding of the whole Meta per attempt.
func (in *Instrumentation) extract(ctx context.Context, meta json.RawMessage) context.Context {
	if len(meta) < len(`{"otel":{}}`) {
		return ctx
	}
	otel := member(meta, MetaKey)
	if len(otel) < 2 || otel[0] != '{' {
		return ctx
	}
	if in.w3c {
		if sc, ok := extractW3C(otel); ok {
			if !sc.IsValid() {
				return ctx
			}
			return trace.ContextWithRemoteSpanContext(ctx, sc)
		}
	}
	return in.cfg.Propagator.Extract(ctx, metaCarrier(otel))
}

// Attribute keys of the spans and metrics.
const (
	AttrJobID    = attribute.Key("acidic.job.id")
	AttrJobKind  = attribute.Key("acidic.job.kind")
	AttrQueue    = attribute.Key("acidic.queue")
	AttrAttempt  = attribute.Key("acidic.attempt")
	AttrRunID    = attribute.Key("acidic.run.id")
	AttrWorkflow = attribute.Key("acidic.workflow")
	AttrStep     = attribute.Key("acidic.step")
	AttrKeyHash  = attribute.Key("acidic.idempotency_key.sha256")
	AttrOutcome  = attribute.Key("acidic.outcome")
	AttrState    = attribute.Key("acidic.state")
)

// JobMiddleware makes a span for every job attempt ("acidic.job KIND",
// "acidic.run WORKFLOW" for a job that executes a run), the child of the
// span that enqueued the job when its Meta carries one. The attributes are
// set once the span is started, and only on a span that records: a sampler
// sees the span's name, kind and parent, not its attributes.
func (in *Instrumentation) JobMiddleware(ctx context.Context, job *acidic.Job, next func(context.Context) error) error {
	ctx = in.extract(ctx, job.Meta)
	isRun := job.RunID != [16]byte{}
	var name string
	if isRun {
		name = in.runNames.get(job.Kind)
	} else {
		name = in.jobNames.get(job.Kind)
	}
	ctx, span := in.tracer.Start(ctx, name, jobSpanStart...)
	defer span.End()
	if span.IsRecording() {
		// Two literal lists: a plain job's attributes in a slice of four.
		if isRun {
			span.SetAttributes(AttrJobID.Int64(job.ID), AttrJobKind.String(job.Kind), AttrQueue.String(job.Queue),
				AttrAttempt.Int(job.Attempt), AttrRunID.String(job.RunID.String()), AttrWorkflow.String(job.Kind))
		} else {
			span.SetAttributes(AttrJobID.Int64(job.ID), AttrJobKind.String(job.Kind), AttrQueue.String(job.Queue),
				AttrAttempt.Int(job.Attempt))
		}
	}
	err := next(ctx)
	endSpan(span, err)
	return err
}

// StepMiddleware makes a span for every step ("acidic.step STEP"), the
// child of its job attempt's. Its attributes are set as JobMiddleware's
// are.
func (in *Instrumentation) StepMiddleware(ctx context.Context, s workflow.StepInfo, next func(context.Context) error) error {
	ctx, span := in.tracer.Start(ctx, in.stepNames.get(s.Step), stepSpanStart...)
	defer span.End()
	if span.IsRecording() {
		queue := ""
		if s.Job != nil {
			queue = s.Job.Queue
		}
		span.SetAttributes(AttrRunID.String(s.RunID.String()), AttrWorkflow.String(s.Workflow), AttrStep.String(s.Step),
			AttrAttempt.Int(s.Attempt), AttrQueue.String(queue), AttrKeyHash.String(KeyHash(s.IdempotencyKey)))
	}
	err := next(ctx)
	endSpan(span, err)
	return err
}

// endSpan records err on span; control results (a snooze, a halt, a
// repeat) are not failures.
func endSpan(span trace.Span, err error) {
	if err == nil {
		return
	}
	if c, ok := steps.AsControl(err); ok && c.Kind() != steps.KindCancel {
		span.SetAttributes(AttrOutcome.String(c.Error()))
		return
	}
	if _, ok := queue.IsSnooze(err); ok {
		span.SetAttributes(AttrOutcome.String("snoozed"))
		return
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, firstLine(err))
}

// KeyHash is the hex SHA-256 of an idempotency key, truncated to 16 bytes:
// what spans carry instead of the key, which may hold what the caller put
// in it.
func KeyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	var buf [32]byte
	hex.Encode(buf[:], sum[:16])
	return string(buf[:])
}

func firstLine(err error) string {
	s := err.Error()
	for i := range len(s) {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
