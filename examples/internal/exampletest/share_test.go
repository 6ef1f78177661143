package exampletest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/examples/internal/exampletest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/storage/sqlite"
)

// TestExamplesShareOneFile runs the five examples at once on one SQLite
// file, as a newcomer's ./acidic.db is shared by every example they try:
// each works queues of its own, so none takes (and, not knowing its kind,
// discards) another's jobs, and every one finishes its work.
func TestExamplesShareOneFile(t *testing.T) {
	programs := []struct {
		name string
		args []string
		want string
	}{
		{"payment", []string{"-order", "shared-1", "-timeout", "120s"}, "receipts for the order:       1"},
		{"refund", []string{"-order", "1", "-total", "2500"}, "completed"},
		{"fanout", []string{"-order", "shared-1", "-timeout", "120s"}, "deliveries: 2, marked notified: 1"},
		{"iterate", []string{"-order", "shared-1", "-timeout", "120s"}, "24 units reserved"},
		{"dag", []string{"-timeout", "120s"}, "workflow succeeded licensed cus_1"},
	}
	bins := map[string]string{}
	for _, p := range programs {
		bins[p.name] = exampletest.Build(t, "../../"+p.name)
	}
	t.Parallel()
	drv := testdb.SQLite(t, sqlite.Options{})
	t.Run("programs", func(t *testing.T) {
		for _, p := range programs {
			t.Run(p.name, func(t *testing.T) {
				t.Parallel()
				out, code := exampletest.Run(t, bins[p.name], drv, p.args...)
				if code != 0 || !strings.Contains(out, p.want) || !strings.Contains(out, exampletest.StoreLine(drv)) {
					t.Errorf("exit %d, want 0, %q, on the shared file", code, p.want)
				}
			})
		}
	})
	ctx := context.Background()
	runs, err := drv.RunList(ctx, acidic.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	workflows := map[string]bool{}
	for _, r := range runs {
		workflows[r.Workflow] = true
		if r.State != acidic.RunSucceeded {
			t.Errorf("run %s of %s: %s (%s)", r.ID, r.Workflow, r.State, r.Error)
		}
	}
	if len(runs) != 4 || len(workflows) != 4 {
		t.Errorf("%d runs of %d workflows, want one of each of payment, fanout, iterate and dag", len(runs), len(workflows))
	}
	// Every queue holds the jobs of one example: an engine works only the
	// queues it names, so no example's engine ever claimed another's job.
	jobs, err := drv.JobList(ctx, acidic.JobFilter{})
	if err != nil {
		t.Fatal(err)
	}
	owner := map[string]string{} // queue -> the example whose jobs it holds
	for _, j := range jobs {
		ex, ok := exampleOf[j.Kind]
		if !ok {
			t.Errorf("job %d of kind %q: which example's is it?", j.ID, j.Kind)
			continue
		}
		if o, ok := owner[j.Queue]; ok && o != ex {
			t.Errorf("queue %q holds jobs of %s and of %s: their engines could take each other's jobs", j.Queue, o, ex)
		}
		owner[j.Queue] = ex
		if j.State != acidic.JobCompleted || len(j.Errors) != 0 && ex != "fanout" {
			t.Errorf("job %d (%s, %s on %s): %s after %d errors %+v", j.ID, ex, j.Kind, j.Queue, j.State, len(j.Errors), j.Errors)
		}
	}
}

// exampleOf names the example of each job kind (a workflow's name is the
// kind of its jobs).
var exampleOf = map[string]string{
	"payment":         "payment",
	"refund":          "refund",
	"order_confirmed": "fanout", "send_email": "fanout", "send_sms": "fanout",
	"reserve_order":        "iterate",
	"subscription_created": "dag", "hex_licence": "dag", "self_hosted_licence": "dag", "welcome_email": "dag", "notify_team": "dag",
}
