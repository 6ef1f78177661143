package otelacidic

import (
	"bytes"
	"context"
	"encoding/hex"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// With the default propagator (propagation.TraceContext, the W3C trace
// context), the trace context is written into Meta and read back from it
// here, without the propagator's carrier: the traceparent is written
// straight from the SpanContext and parsed straight from Meta's bytes, so
// that an enqueue allocates only the new Meta and an attempt no string.
// What is written and what is read are the propagator's, byte for byte
// and field for field (TestW3CInjectMatchesPropagator,
// FuzzW3CExtractMatchesPropagator). Any other propagator goes through
// pairCarrier and metaCarrier.

// isW3C reports whether p is the W3C trace context propagator itself.
func isW3C(p propagation.TextMapPropagator) bool {
	switch p.(type) {
	case propagation.TraceContext, *propagation.TraceContext:
		return true
	}
	return false
}

// appendW3C appends sc's trace context as the JSON object that
// propagation.TraceContext's Inject into pairCarrier gives: "tracestate"
// first when there is one (the propagator sets it first), then
// "traceparent" (version 00, the trace and span ids, the sampled and
// random flags).
func appendW3C(b []byte, sc trace.SpanContext) []byte {
	b = append(b, '{')
	if ts := sc.TraceState(); ts.Len() > 0 {
		b = appendJSONString(append(b, `"tracestate":`...), ts.String())
		b = append(b, ',')
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	flags := sc.TraceFlags() & (trace.FlagsSampled | trace.FlagsRandom)
	b = append(b, `"traceparent":"00-`...)
	b = hex.AppendEncode(b, tid[:])
	b = hex.AppendEncode(append(b, '-'), sid[:])
	b = hex.AppendEncode(append(b, '-'), []byte{byte(flags)})
	return append(b, `"}`...)
}

// extractW3C returns the remote SpanContext that
// propagation.TraceContext's Extract reads from metaCarrier(obj), and ok
// false when it cannot tell without the carrier (a traceparent written
// with escapes).
func extractW3C(obj []byte) (sc trace.SpanContext, ok bool) {
	raw := member(obj, traceparentKey)
	if len(raw) < 2 || raw[0] != '"' {
		return trace.SpanContext{}, true // no string: no trace context
	}
	h := raw[1 : len(raw)-1]
	if bytes.IndexByte(h, '\\') >= 0 {
		return trace.SpanContext{}, false
	}
	// As the propagator parses it: parts cut at '-', of 2, 32, 16 and 2
	// lower-case hex digits; version ff is invalid; version 00 has nothing
	// after the flags.
	var ver, flags [1]byte
	var scc trace.SpanContextConfig
	if !hexPart(ver[:], &h) || ver[0] == 0xff || !hexPart(scc.TraceID[:], &h) || !hexPart(scc.SpanID[:], &h) ||
		!hexPart(flags[:], &h) || (ver[0] == 0 && (len(h) > 0 || flags[0] > 3)) {
		return trace.SpanContext{}, true
	}
	scc.TraceFlags = trace.TraceFlags(flags[0]) & (trace.FlagsSampled | trace.FlagsRandom)
	if ts := member(obj, tracestateKey); len(ts) >= 2 && ts[0] == '"' {
		// Failing to parse tracestate does not fail the traceparent.
		scc.TraceState, _ = trace.ParseTraceState(jsonString(ts))
	}
	scc.Remote = true
	if sc = trace.NewSpanContext(scc); !sc.IsValid() {
		return trace.SpanContext{}, true
	}
	return sc, true
}

const (
	traceparentKey = "traceparent"
	tracestateKey  = "tracestate"
)

// hexPart decodes the part of *h before the next '-' (all of *h when there
// is none) into dst, which it must fill exactly, and leaves the rest after
// that '-' in *h. It accepts lower-case hex digits only.
func hexPart(dst []byte, h *[]byte) bool {
	part, left, _ := bytes.Cut(*h, []byte{'-'})
	*h = left
	if len(part) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, lo := unhex(part[2*i]), unhex(part[2*i+1])
		if hi|lo > 0xf {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return 0xff
}

// inject returns the trace context of sc as the JSON object that goes
// under MetaKey, empty when the propagator writes nothing.
func (in *Instrumentation) inject(ctx context.Context, sc trace.SpanContext, buf []byte) []byte {
	if in.w3c {
		return appendW3C(buf, sc)
	}
	var carrier pairCarrier
	carrier.pairs = make([][2]string, 0, 2) // traceparent, tracestate
	in.cfg.Propagator.Inject(ctx, &carrier)
	if len(carrier.pairs) == 0 {
		return nil
	}
	return carrier.appendJSON(buf)
}
