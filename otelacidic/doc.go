// Package otelacidic instruments Acidic with OpenTelemetry: a span for
// every job attempt and every step, carried across enqueues in the job's
// Meta so one trace shows the request that enqueued a run, the run, its
// steps and its child runs; metrics of jobs, steps, runs, queues and the
// outbox; and an http.Handler serving them to Prometheus.
//
// It lives in its own package so that the core does not force the
// OpenTelemetry dependency on users who do not want it.
//
//	inst, _ := otelacidic.New(otelacidic.Config{TracerProvider: tp, MeterProvider: mp})
//	cfg := workflow.Config{...}
//	inst.Configure(&cfg)                 // middlewares and the enqueue hook
//	eng, _ := workflow.NewEngine(drv, cfg)
//	stop, _ := inst.Observe(eng.Events(), drv) // metrics from events and gauges from the store
//	defer stop()
//
// See docs/observability.md.
package otelacidic
