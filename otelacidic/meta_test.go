package otelacidic

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/acidic-go/acidic"
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
		sc := trace.SpanContextFromContext(in.extract(context.Background(), &acidic.Job{Meta: json.RawMessage(meta)}))
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
		sc := trace.SpanContextFromContext(in.extract(context.Background(), &acidic.Job{Meta: json.RawMessage(meta)}))
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
