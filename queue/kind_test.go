package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
)

type emailArgs struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
}

// Jobs enqueued through a typed kind (alone, in a batch, in the caller's
// transaction) are worked by the handler registered through it, with their
// args decoded.
func TestKindEnqueueAndHandle(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	drv := testdb.New(t, testdb.Options{})
	sendEmail := queue.NewKind[emailArgs]("send_email")
	var sent []emailArgs
	ws := queue.NewWorkers()
	if err := sendEmail.Handle(ws, func(ctx context.Context, job *acidic.Job, args emailArgs) error {
		sent = append(sent, args)
		return nil
	}, queue.KindOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := sendEmail.Handle(ws, func(context.Context, *acidic.Job, emailArgs) error { return nil }, queue.KindOptions{}); !errors.Is(err, queue.ErrDuplicateKind) {
		t.Errorf("second Handle: %v, want ErrDuplicateKind", err)
	}
	c := newClient(t, drv, queue.Config{Workers: ws, Logger: quietLogger()})

	job, err := sendEmail.Enqueue(ctx, c, emailArgs{To: "ada@example.com", Subject: "one"}, queue.EnqueueOptions{Priority: queue.PriorityOf(1)})
	if err != nil {
		t.Fatal(err)
	}
	if job.Kind != "send_email" || job.Priority != 1 {
		t.Errorf("job %+v", job)
	}
	if _, err := c.EnqueueMany(ctx, []queue.EnqueueParams{
		sendEmail.Params(emailArgs{To: "bob@example.com", Subject: "two"}, queue.EnqueueOptions{Priority: queue.PriorityOf(2)}),
		sendEmail.Params(emailArgs{To: "cy@example.com", Subject: "three"}, queue.EnqueueOptions{Priority: queue.PriorityOf(3)}),
	}); err != nil {
		t.Fatal(err)
	}
	// In the caller's transaction: rolled back, then committed.
	for _, commit := range []bool{false, true} {
		tx, err := drv.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sendEmail.EnqueueTx(ctx, c, drv.WrapTx(tx), emailArgs{To: "dee@example.com", Subject: "four"}, queue.EnqueueOptions{Priority: queue.PriorityOf(3)}); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit(ctx)
		} else {
			err = tx.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Drain(ctx, queue.DefaultQueue, queue.DrainOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"one", "two", "three", "four"}
	if len(sent) != len(want) {
		t.Fatalf("sent %+v, want subjects %v", sent, want)
	}
	for i, s := range want {
		if sent[i].Subject != s {
			t.Errorf("sent[%d] = %+v, want subject %q", i, sent[i], s)
		}
	}

	got, err := sendEmail.Args(job)
	if err != nil || got != (emailArgs{To: "ada@example.com", Subject: "one"}) {
		t.Errorf("Args(job) = %+v, %v", got, err)
	}
}

// Args refuses a job of another kind, and args that do not decode are a
// typed error.
func TestKindArgsErrors(t *testing.T) {
	t.Parallel()
	sendEmail := queue.NewKind[emailArgs]("send_email")
	other := &acidic.Job{ID: 4, Kind: "resize", Args: json.RawMessage(`{"to": "x"}`)}
	if _, err := sendEmail.Args(other); !errors.Is(err, queue.ErrArgsDecode) {
		t.Errorf("Args of a resize job: %v, want ErrArgsDecode", err)
	}
	bad := &acidic.Job{ID: 5, Kind: "send_email", Args: json.RawMessage(`{"to": 42}`)}
	_, err := sendEmail.Args(bad)
	var de *acidic.DecodeError
	if !errors.Is(err, queue.ErrArgsDecode) || !errors.Is(err, acidic.ErrDecode) || !errors.As(err, &de) ||
		de.What != "job args" || de.JobID != 5 || de.Type != "queue_test.emailArgs" {
		t.Errorf("Args of a job with bad args: %v (%+v)", err, de)
	}
	// The zero Kind has no name: nothing is written.
	var zero queue.Kind[emailArgs]
	c := newClient(t, testdb.New(t, testdb.Options{}), queue.Config{Logger: quietLogger()})
	if _, err := zero.Enqueue(ctxT(t), c, emailArgs{}, queue.EnqueueOptions{}); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("Enqueue of the zero Kind: %v, want ErrInvalid", err)
	}
}
