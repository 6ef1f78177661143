package otelacidic

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

const testParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// TestExtractReadsOnlyTheOtelMember: the trace context is found in Meta as
// the enqueue hook writes it, as PostgreSQL's jsonb gives it back (spaces,
// keys reordered), among the user's own members, and with escapes; a
// member named "otel" deeper in the user's values, or inside a string, is
// not taken for it; Meta that is no object, or whose member is not one,
// carries nothing.
func TestExtractReadsOnlyTheOtelMember(t *testing.T) {
	in, err := New(Config{DisableMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	carried := map[string]string{
		"hook":             `{"otel":{"traceparent":"` + testParent + `"},"tenant":"acme"}`,
		"jsonb":            `{"a": [1, {"otel": 2}], "otel": {"tracestate": "", "traceparent": "` + testParent + `"}, "tenant": "acme"}`,
		"last":             `{"n": -1.5e3, "b": true, "z": null, "s": "x\"otel\":{}", "otel": {"traceparent": "` + testParent + `"}}`,
		"escaped key":      `{"o\u0074el":{"traceparent":"` + testParent + `"}}`,
		"escaped value":    `{"otel":{"trace\u0070arent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\u0031"}}`,
		"whitespace":       "\n{ \"otel\"\t:\r\n{ \"traceparent\" : \"" + testParent + "\" } }",
		"nested obj first": `{"user":{"otel":{"traceparent":"00-11111111111111111111111111111111-2222222222222222-01"}},"otel":{"traceparent":"` + testParent + `"}}`,
	}
	for name, meta := range carried {
		if !json.Valid([]byte(meta)) {
			t.Fatalf("%s: test Meta is not JSON", name)
		}
		sc := trace.SpanContextFromContext(in.extract(context.Background(), json.RawMessage(meta)))
		if !sc.IsValid() || sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || sc.SpanID().String() != "00f067aa0ba902b7" || !sc.IsRemote() {
			t.Errorf("%s: extracted %v from %s", name, sc, meta)
		}
	}
	for name, meta := range map[string]string{
		"none":          `{"tenant":"acme"}`,
		"nested only":   `{"user":{"otel":{"traceparent":"` + testParent + `"}}}`,
		"in a string":   `{"s":"{\"otel\":{\"traceparent\":\"` + testParent + `\"}}"}`,
		"not an object": `["otel",{"traceparent":"` + testParent + `"}]`,
		"member string": `{"otel":"` + testParent + `"}`,
		"number value":  `{"otel":{"traceparent":12345678901234567890}}`,
		"truncated":     `{"otel":{"traceparent":"` + testParent,
		"null":          `null`,
	} {
		sc := trace.SpanContextFromContext(in.extract(context.Background(), json.RawMessage(meta)))
		if sc.IsValid() {
			t.Errorf("%s: extracted %v from %s", name, sc, meta)
		}
	}
}

// TestMetaCarrierMatchesMapCarrier: the carrier reads what decoding the
// member into a propagation.MapCarrier reads, so a propagator of the
// user's (baggage, several keys) sees the same.
func TestMetaCarrierMatchesMapCarrier(t *testing.T) {
	obj := `{"traceparent": "` + testParent + `", "tracestate": "k=v,x=y", "baggage": "a=1", "esc\"aped": "q\\u", "n": 3}`
	var m map[string]any
	if err := json.Unmarshal([]byte(obj), &m); err != nil {
		t.Fatal(err)
	}
	c := metaCarrier(obj)
	var wantKeys []string
	for k, v := range m {
		wantKeys = append(wantKeys, k)
		want, _ := v.(string)
		if got := c.Get(k); got != want {
			t.Errorf("Get(%q) = %q, want %q", k, got, want)
		}
	}
	if got := c.Get("missing"); got != "" {
		t.Errorf("Get(missing) = %q", got)
	}
	keys := c.Keys()
	slices.Sort(keys)
	slices.Sort(wantKeys)
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("Keys() = %q, want %q", keys, wantKeys)
	}
	var _ propagation.TextMapCarrier = c
}

// TestEnqueueHookAddsTheMemberOnly: the hook adds the trace context to
// Meta without decoding it: the user's members stay as they were, byte for
// byte (order, spacing, duplicates), an "otel" member already there has its
// value replaced, Meta that is empty or null becomes an object of the one
// member, and Meta that is not an object is left alone. What it writes
// reads back through extract.
func TestEnqueueHookAddsTheMemberOnly(t *testing.T) {
	in, err := New(Config{DisableMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := trace.ParseTraceState("k=v")
	if err != nil {
		t.Fatal(err)
	}
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, TraceFlags: trace.FlagsSampled, TraceState: sc})
	ctx := trace.ContextWithSpanContext(context.Background(), parent)
	const otel = `{"tracestate":"k=v","traceparent":"` + testParent + `"}` // in the order the propagator sets them
	for meta, want := range map[string]string{
		``:                                `{"otel":` + otel + `}`,
		`null`:                            `{"otel":` + otel + `}`,
		` null `:                          `{"otel":` + otel + `}`,
		`{}`:                              `{"otel":` + otel + `}`,
		` { } `:                           ` { "otel":` + otel + `} `,
		`{"tenant":"acme"}`:               `{"tenant":"acme","otel":` + otel + `}`,
		`{"b": 1, "a": [1, {"otel": 2}]}`: `{"b": 1, "a": [1, {"otel": 2}],"otel":` + otel + `}`,
		`{"a":1,"a":2}`:                   `{"a":1,"a":2,"otel":` + otel + `}`,
		`{"otel": {"traceparent": "old"}, "z": null}`: `{"otel": ` + otel + `, "z": null}`,
		`{"otel":"x","n":-1.5e3}`:                     `{"otel":` + otel + `,"n":-1.5e3}`,
		"{\"s\":\"x\\\"otel\\\":{}\"}\n":              "{\"s\":\"x\\\"otel\\\":{}\",\"otel\":" + otel + "}\n",
	} {
		got, err := in.EnqueueHook(ctx, "k", json.RawMessage(meta))
		if err != nil || string(got) != want {
			t.Errorf("EnqueueHook(%q) = %q, %v; want %q", meta, got, err, want)
			continue
		}
		if !json.Valid(got) {
			t.Errorf("EnqueueHook(%q) = %q: not JSON", meta, got)
		}
		if back := trace.SpanContextFromContext(in.extract(context.Background(), got)); !back.IsValid() ||
			back.TraceID() != parent.TraceID() || back.SpanID() != parent.SpanID() || back.TraceState().String() != "k=v" {
			t.Errorf("EnqueueHook(%q) = %q: reads back as %v", meta, got, back)
		}
	}
	for _, meta := range []string{`[1,2]`, `"otel"`, `12`, `true`} {
		if got, err := in.EnqueueHook(ctx, "k", json.RawMessage(meta)); got != nil || err != nil {
			t.Errorf("EnqueueHook(%q) = %q, %v; want Meta left alone", meta, got, err)
		}
	}
	if got, err := in.EnqueueHook(context.Background(), "k", json.RawMessage(`{"a":1}`)); got != nil || err != nil {
		t.Errorf("EnqueueHook without a span = %q, %v; want nothing", got, err)
	}
}

// TestAppendJSONString: strings are written as encoding/json writes them
// (what it escapes for HTML aside).
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "ctl\x00\x1f\n\t", "ünïcode ☃", "bad\xffutf8"} {
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("%q: wrote %s: %v", s, got, err)
			continue
		}
		want := s
		if s == "bad\xffutf8" {
			want = "bad\ufffdutf8"
		}
		if back != want {
			t.Errorf("%q: wrote %s, reads back %q", s, got, back)
		}
	}
}
