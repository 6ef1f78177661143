package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/events"
	"github.com/acidic-go/acidic/otelacidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// Scenario 9: what the OpenTelemetry instrumentation (package otelacidic)
// costs. The same workloads, worked with the instrumentation off and on,
// in interleaved rounds (the order of the sides alternating each round);
// the figure is the median of the rounds' own throughput ratios, on ÷ off,
// the target the (a cost of at most 5%).
//
// "On" is tracing and metrics both: every span sampled and exported
// through the SDK's batcher to a no-op exporter (the spans are built,
// snapshotted and handed over, only not sent), every metric recorded into a
// manual reader (collected once after each batch, as a scrape would), the
// store gauges registered, and the work enqueued under request spans so
// that every job carries a trace context in its Meta. A third side is the
// same with the sampler the docs recommend where jobs are tiny and many:
// parent-based, 1% of requests.

const (
	obsKind      = "bench.obs"
	obsWorkflow  = "bench.obs3"
	obsRounds    = 5
	obsPerSpan   = 10   // jobs or runs enqueued under one request span
	obsRatio     = 0.01 // the sampled side's ratio
	obsTarget    = 0.95
	obsRealistic = time.Millisecond // the work of a job of the third workload
)

// obsSide is one side of the comparison: "on" is traces and metrics, with
// every span sampled or with a parent-based sampler of 1%.
type obsSide struct {
	label   string
	on      bool
	sampler sdktrace.Sampler // nil: every span
}

var obsSides = []obsSide{
	{label: "off"},
	{label: "on (all spans)", on: true},
	{label: "on (1% sampled)", on: true,
		sampler: sdktrace.ParentBased(sdktrace.TraceIDRatioBased(obsRatio))},
}

// obsWorkload is what is worked: plain jobs (whose work takes work), or
// runs of three empty steps.
type obsWorkload struct {
	label string
	unit  string // of the rate: jobs/s or steps/s
	per   string // of the CPU: job or step
	runs  bool
	work  time.Duration
}

func (b *bench) otelScenario(ctx context.Context) error {
	w := b.cfg.maxWorkers()
	rounds := b.cfg.runs * obsRounds
	if b.cfg.quick {
		rounds = b.cfg.runs
	}
	for _, wl := range []obsWorkload{
		{label: "empty jobs", unit: "jobs/s", per: "job"},
		{label: "steps of 3-step runs", unit: "steps/s", per: "step", runs: true},
		{label: "jobs of " + obsRealistic.String(), unit: "jobs/s", per: "job", work: obsRealistic},
	} {
		n := b.cfg.jobs // jobs, or runs of three steps
		if wl.runs {
			n = max(1, b.cfg.workflows/stepsPerWF)
		}
		ops := n
		if wl.runs {
			ops = n * stepsPerWF
		}
		rates := make([][]float64, len(obsSides))  // by side, by round
		ratios := make([][]float64, len(obsSides)) // on ÷ off, by side, by round
		cpus := make([]cpuUse, len(obsSides))
		for round := range rounds {
			order := make([]int, len(obsSides))
			for i := range order {
				order[i] = i
				if round%2 == 1 {
					order[i] = len(obsSides) - 1 - i
				}
			}
			got := make([]float64, len(obsSides))
			for _, i := range order {
				rate, cpu, err := b.obsBatch(ctx, wl, obsSides[i], w, n)
				if err != nil {
					return fmt.Errorf("%s, %s: %w", wl.label, obsSides[i].label, err)
				}
				got[i] = rate
				rates[i] = append(rates[i], rate)
				cpus[i] = cpus[i].add(cpu)
			}
			for i := 1; i < len(obsSides); i++ {
				ratios[i] = append(ratios[i], got[i]/got[0])
			}
			b.logf("otel: %s, round %d: %.0f %s off, %.0f on (all spans), %.0f on (1%% sampled)", wl.label, round+1, got[0], wl.unit, got[1], got[2])
		}
		note := fmt.Sprintf("%d %ss", n, map[bool]string{false: "job", true: "run"}[wl.runs])
		if rounds > 1 {
			note = joinNotes(fmt.Sprintf("median of %d rounds", rounds), note)
		}
		offClient, offServer := cpus[0].per(ops * rounds)
		for i, side := range obsSides {
			client, server := cpus[i].per(ops * rounds)
			b.tbl.add("9 otel", wl.label+", "+side.label, w, median(rates[i]), wl.unit, nil, note).withCPU(client, server, wl.per)
			if i == 0 {
				continue
			}
			cpuNote := ""
			if offClient > 0 {
				cpuNote = fmt.Sprintf("cpu/%s on ÷ off: %.2f here", wl.per, client/offClient)
				if offServer > 0 && server > 0 {
					cpuNote += fmt.Sprintf(", %.2f here + postgres", (client+server)/(offClient+offServer))
				}
			}
			b.tbl.add("9 otel", wl.label+": "+side.label+" ÷ off", w, median(ratios[i]), "ratio", atLeast(obsTarget),
				joinNotes(ratiosNote(ratios[i]), cpuNote))
		}
	}
	return nil
}

// ratiosNote gives the range of the rounds' ratios, so the reader sees
// the noise next to the median.
func ratiosNote(rs []float64) string {
	if len(rs) < 2 {
		return ""
	}
	lo, hi := rs[0], rs[0]
	for _, r := range rs {
		lo, hi = min(lo, r), max(hi, r)
	}
	return "rounds " + strconv.FormatFloat(lo, 'f', 2, 64) + " – " + strconv.FormatFloat(hi, 'f', 2, 64)
}

// obsInst is the instrumentation of one batch of an "on" side.
type obsInst struct {
	inst   *otelacidic.Instrumentation
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
	reader *sdkmetric.ManualReader
}

func newObsInst(side obsSide) (*obsInst, error) {
	opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(tracetest.NewNoopExporter())}
	if side.sampler != nil {
		opts = append(opts, sdktrace.WithSampler(side.sampler))
	}
	o := &obsInst{tp: sdktrace.NewTracerProvider(opts...), reader: sdkmetric.NewManualReader()}
	o.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(o.reader))
	var err error
	o.inst, err = otelacidic.New(otelacidic.Config{TracerProvider: o.tp, MeterProvider: o.mp})
	return o, err
}

// tracer makes the request spans the work is enqueued under.
func (o *obsInst) tracer() trace.Tracer {
	if o == nil {
		return noop.NewTracerProvider().Tracer("")
	}
	return o.tp.Tracer("bench")
}

// finish collects the metrics once, as a scrape would, and shuts down.
func (o *obsInst) finish(ctx context.Context) error {
	if o == nil {
		return nil
	}
	err := o.reader.Collect(ctx, new(metricdata.ResourceMetrics))
	_ = o.tp.Shutdown(ctx)
	_ = o.mp.Shutdown(ctx)
	return err
}

// obsBatch works n jobs (or n runs) of wl with w workers, side's
// instrumentation on or off, and returns jobs/s (or steps/s) and the CPU
// used, from Start until Stop returned and the batcher had handed every
// span to the exporter.
func (b *bench) obsBatch(ctx context.Context, wl obsWorkload, side obsSide, w, n int) (float64, cpuUse, error) {
	if err := b.reset(ctx); err != nil {
		return 0, cpuUse{}, err
	}
	var o *obsInst
	if side.on {
		var err error
		if o, err = newObsInst(side); err != nil {
			return 0, cpuUse{}, err
		}
	}
	defer func() { _ = o.finish(context.WithoutCancel(ctx)) }()

	var done *counter
	var start, stop func(context.Context) error
	var bus func() *events.Bus
	var enqueue func(ctx context.Context, k int) error
	if wl.runs {
		set := newRunSet(n)
		done = set.c
		wf := emptySteps(obsWorkflow, stepsPerWF, set)
		e, err := b.newEngine(w, func(cfg *workflow.Config) {
			if o != nil {
				o.inst.Configure(cfg)
			}
		}, wf)
		if err != nil {
			return 0, cpuUse{}, err
		}
		start, stop, bus = e.Start, e.Stop, e.Events
		enqueue = func(ctx context.Context, k int) error {
			return b.drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
				for range k {
					if _, err := e.EnqueueTx(ctx, tx, obsWorkflow, emptyArgs{}, workflow.EnqueueOptions{}); err != nil {
						return err
					}
				}
				return nil
			})
		}
	} else {
		done = newCounter(n)
		ws := queue.NewWorkers()
		if err := ws.Handle(obsKind, func(context.Context, *acidic.Job) error {
			if wl.work > 0 {
				time.Sleep(wl.work)
			}
			done.add()
			return nil
		}, queue.KindOptions{}); err != nil {
			return 0, cpuUse{}, err
		}
		qcfg := b.queueConfig(ws, w)
		if o != nil {
			o.inst.ConfigureQueue(&qcfg)
		}
		c, err := queue.New(b.drv, qcfg)
		if err != nil {
			return 0, cpuUse{}, err
		}
		start, stop, bus = c.Start, c.Stop, c.Events
		params := make([]queue.EnqueueParams, obsPerSpan)
		for i := range params {
			params[i] = queue.EnqueueParams{Kind: obsKind}
		}
		enqueue = func(ctx context.Context, k int) error {
			_, err := c.EnqueueMany(ctx, params[:k])
			return err
		}
	}
	if o != nil {
		stopObs, err := o.inst.Observe(bus(), b.drv)
		if err != nil {
			return 0, cpuUse{}, err
		}
		defer stopObs()
	}
	// Each group of obsPerSpan is enqueued under a request span of its
	// own, from a few goroutines.
	tr := o.tracer()
	var next atomic.Int64
	err := parallel(4, func(int) error {
		for {
			from := int(next.Add(obsPerSpan)) - obsPerSpan
			if from >= n {
				return nil
			}
			rctx, span := tr.Start(ctx, "request")
			err := enqueue(rctx, min(obsPerSpan, n-from))
			span.End()
			if err != nil {
				return fmt.Errorf("enqueue: %w", err)
			}
		}
	})
	if err != nil {
		return 0, cpuUse{}, err
	}
	if o != nil {
		// The request spans are not the work's: out of the way first.
		if err := o.tp.ForceFlush(ctx); err != nil {
			return 0, cpuUse{}, err
		}
	}
	if err := b.warm(ctx, w+4); err != nil {
		return 0, cpuUse{}, err
	}
	cpu0 := b.cpuSnapshot(ctx)
	t0 := time.Now()
	if err := start(ctx); err != nil {
		return 0, cpuUse{}, err
	}
	err = waitFor(ctx, done.done, done.load, stall, "work done")
	if stopErr := stopClient(ctx, stop); err == nil && stopErr != nil {
		err = fmt.Errorf("stop: %w", stopErr)
	}
	if err == nil && o != nil {
		err = o.tp.ForceFlush(ctx)
	}
	elapsed := time.Since(t0)
	cpu := b.cpuSnapshot(ctx).since(cpu0)
	if err != nil {
		return 0, cpuUse{}, err
	}
	q, unit := "SELECT count(*) FROM "+b.table("jobs")+" WHERE state = 'completed'", 1
	if wl.runs {
		q, unit = "SELECT count(*) FROM "+b.table("runs")+" WHERE state = 'succeeded'", stepsPerWF
	}
	ok, err := b.count(ctx, q)
	if err != nil {
		return 0, cpuUse{}, err
	}
	if ok != n {
		return 0, cpuUse{}, fmt.Errorf("%d of %d finished", ok, n)
	}
	return float64(n*unit) / elapsed.Seconds(), cpu, nil
}
