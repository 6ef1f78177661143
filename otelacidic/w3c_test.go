package otelacidic

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// viaCarrier is instrumentation whose propagator is the W3C one wrapped
// (a composite of it alone), so that it goes through pairCarrier and
// metaCarrier: what the propagator itself writes and reads.
func viaCarrier(t testing.TB) *Instrumentation {
	in, err := New(Config{DisableMetrics: true, Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{})})
	if err != nil {
		t.Fatal(err)
	}
	if in.w3c {
		t.Fatal("a composite propagator taken for the W3C one")
	}
	return in
}

func direct(t testing.TB) *Instrumentation {
	in, err := New(Config{DisableMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	if !in.w3c {
		t.Fatal("the default propagator not taken for the W3C one")
	}
	return in
}

// TestW3CInjectMatchesPropagator: the enqueue hook with the default
// propagator writes into Meta, byte for byte, what the W3C propagator
// writes through its carrier (and what it writes in a MapCarrier), for
// sampled and unsampled span contexts, the random flag, a reserved flag
// (dropped), and with and without a tracestate.
func TestW3CInjectMatchesPropagator(t *testing.T) {
	fast, slow := direct(t), viaCarrier(t)
	ts, err := trace.ParseTraceState("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
	if err != nil {
		t.Fatal(err)
	}
	for _, flags := range []trace.TraceFlags{0, trace.FlagsSampled, trace.FlagsRandom, trace.FlagsSampled | trace.FlagsRandom, 0x81} {
		for _, state := range []trace.TraceState{{}, ts} {
			sc := trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
				SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, TraceFlags: flags, TraceState: state})
			ctx := trace.ContextWithSpanContext(context.Background(), sc)
			for _, meta := range []string{``, `{"tenant":"acme"}`, `{"otel":{"traceparent":"old"}}`} {
				got, err := fast.EnqueueHook(ctx, "k", json.RawMessage(meta))
				if err != nil {
					t.Fatal(err)
				}
				want, err := slow.EnqueueHook(ctx, "k", json.RawMessage(meta))
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != string(want) {
					t.Errorf("flags %v, state %q, Meta %q: direct %s, propagator %s", flags, state, meta, got, want)
				}
			}
			got, _ := fast.EnqueueHook(ctx, "k", nil)
			var m struct{ Otel map[string]string }
			if err := json.Unmarshal(got, &m); err != nil {
				t.Fatal(err)
			}
			mc := propagation.MapCarrier{}
			propagation.TraceContext{}.Inject(ctx, mc)
			if len(m.Otel) != len(mc) || m.Otel["traceparent"] != mc["traceparent"] || m.Otel["tracestate"] != mc["tracestate"] {
				t.Errorf("flags %v, state %q: direct %q, propagator into a MapCarrier %q", flags, state, m.Otel, mc)
			}
		}
	}
}

// w3cSeeds are trace contexts as Meta carries them under "otel": valid,
// and each way a traceparent or tracestate can be wrong.
var w3cSeeds = []string{
	`{"traceparent":"` + testParent + `"}`,
	`{"tracestate":"k=v,x=y","traceparent":"` + testParent + `"}`,
	`{"tracestate": "bad state!", "traceparent": "` + testParent + `"}`,
	`{"tracestate": 3, "traceparent": "` + testParent + `"}`,
	`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}`,
	`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03"}`,
	`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-04"}`,
	`{"traceparent":"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-ever"}`,
	`{"traceparent":"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09x"}`,
	`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-"}`,
	`{"traceparent":"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`,
	`{"traceparent":"fe-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`,
	`{"traceparent":"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"}`,
	`{"traceparent":"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}`,
	`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"}`,
	`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"}`,
	`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"}`,
	`{"traceparent":"0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`,
	`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g"}`,
	`{"traceparent":"00\u002d4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`,
	`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n"}`,
	`{"traceparent":""}`,
	`{"traceparent":3}`,
	`{"traceparent":null,"tracestate":"k=v"}`,
	`{"tracestate":"k=v"}`,
	`{}`,
	`{"traceparent":"` + testParent + `","traceparent":"00-11111111111111111111111111111111-2222222222222222-01"}`,
}

// checkW3CExtract fails t when reading obj (Meta's "otel" member) the
// direct way gives another span context than the propagator through its
// carrier.
func checkW3CExtract(t *testing.T, fast, slow *Instrumentation, obj string) {
	meta := json.RawMessage(`{"a":1,"otel":` + obj + `}`)
	if !json.Valid(meta) {
		return
	}
	got := trace.SpanContextFromContext(fast.extract(context.Background(), meta))
	want := trace.SpanContextFromContext(slow.extract(context.Background(), meta))
	if !got.Equal(want) || got.IsRemote() != want.IsRemote() {
		t.Errorf("otel member %s: direct %v (remote %v), propagator %v (remote %v)", obj, got, got.IsRemote(), want, want.IsRemote())
	}
}

// TestW3CExtractMatchesPropagator: the direct read of the default
// propagator's trace context gives the span context the W3C propagator
// gives through its carrier, for each seed: valid ones, each kind of
// malformed traceparent (versions, lengths, upper case, zero ids, extra
// fields, escapes, not a string) and tracestate.
func TestW3CExtractMatchesPropagator(t *testing.T) {
	fast, slow := direct(t), viaCarrier(t)
	valid := 0
	for _, obj := range w3cSeeds {
		checkW3CExtract(t, fast, slow, obj)
		if trace.SpanContextFromContext(fast.extract(context.Background(), json.RawMessage(`{"otel":`+obj+`}`))).IsValid() {
			valid++
		}
	}
	if valid < 5 || valid > len(w3cSeeds)-10 {
		t.Errorf("%d of %d seeds valid: the seeds do not test what they should", valid, len(w3cSeeds))
	}
}

// FuzzW3CExtractMatchesPropagator is TestW3CExtractMatchesPropagator on
// mutations of its seeds (go test -fuzz FuzzW3C ./otelacidic).
func FuzzW3CExtractMatchesPropagator(f *testing.F) {
	for _, s := range w3cSeeds {
		f.Add(s)
	}
	fast, slow := direct(f), viaCarrier(f)
	f.Fuzz(func(t *testing.T, obj string) {
		if strings.Count(obj, "{") > 8 {
			return
		}
		checkW3CExtract(t, fast, slow, obj)
	})
}

// TestW3CAllocations: with the default propagator, the enqueue hook
// allocates the new Meta alone, and reading the trace context back (no
// tracestate) allocates only what the context holds: no strings, no
// carrier.
func TestW3CAllocations(t *testing.T) {
	in := direct(t)
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	meta := json.RawMessage(`{"tenant":"acme"}`)
	if n := testing.AllocsPerRun(100, func() { _, _ = in.EnqueueHook(ctx, "k", meta) }); n > 1 {
		t.Errorf("EnqueueHook: %v allocations, want 1 (the new Meta)", n)
	}
	carried, _ := in.EnqueueHook(ctx, "k", meta)
	var back trace.SpanContext
	n := testing.AllocsPerRun(100, func() { back = trace.SpanContextFromContext(in.extract(context.Background(), carried)) })
	if !back.Equal(sc.WithRemote(true)) {
		t.Fatalf("read back %v, want %v", back, sc)
	}
	want := testing.AllocsPerRun(100, func() { _ = trace.ContextWithRemoteSpanContext(context.Background(), sc) })
	if n > want {
		t.Errorf("extract: %v allocations, want %v (the context's)", n, want)
	}
}
