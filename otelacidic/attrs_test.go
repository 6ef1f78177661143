package otelacidic_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/otelacidic"
)

// TestJobSpanAttributes: a plain job's span carries its id, kind, queue
// and attempt; a run's job's span also its run id and workflow; nothing
// else.
func TestJobSpanAttributes(t *testing.T) {
	rec, _, inst := newTracing(t)
	run := uuid.New()
	next := func(context.Context) error { return nil }
	_ = inst.JobMiddleware(context.Background(), &acidic.Job{ID: 7, Kind: "mail", Queue: "q", Attempt: 2}, next)
	_ = inst.JobMiddleware(context.Background(), &acidic.Job{ID: 8, Kind: "pay", Queue: "q", Attempt: 1, RunID: run}, next)
	want := []map[attribute.Key]string{
		{otelacidic.AttrJobID: "7", otelacidic.AttrJobKind: "mail", otelacidic.AttrQueue: "q", otelacidic.AttrAttempt: "2"},
		{otelacidic.AttrJobID: "8", otelacidic.AttrJobKind: "pay", otelacidic.AttrQueue: "q", otelacidic.AttrAttempt: "1",
			otelacidic.AttrRunID: run.String(), otelacidic.AttrWorkflow: "pay"},
	}
	spans := rec.Ended()
	if len(spans) != len(want) {
		t.Fatalf("%d spans, want %d", len(spans), len(want))
	}
	for i, s := range spans {
		got := map[attribute.Key]string{}
		for _, kv := range s.Attributes() {
			got[kv.Key] = kv.Value.String()
		}
		if len(got) != len(want[i]) {
			t.Errorf("%s: attributes %v, want %v", s.Name(), got, want[i])
		}
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", s.Name(), k, got[k], v)
			}
		}
	}
}
