package acidictest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/acidictest"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/workflow"
)

// SignupArgs are the arguments of the signup workflow of the examples.
type SignupArgs struct {
	Email string `json:"email"`
}

// This example tests that a workflow stages the job it should, without
// running that job: the harness stores enqueued jobs, Drain works one queue,
// and RequireEnqueued finds the staged job (or fails the test).
func ExampleNew() {
	t := newExampleT() // in a test: the test's *testing.T
	defer t.finish()
	ctx := context.Background()

	signup := workflow.Define("signup", workflow.Options{},
		steps.Do("welcome", func(ctx context.Context, sc *steps.Context[SignupArgs, struct{}]) error {
			// Staged in the step's transaction: the mail goes out only if
			// the step commits.
			_, err := sc.Enqueue(ctx, "email", map[string]string{"to": sc.Args.Email, "template": "welcome"},
				queue.EnqueueOptions{Queue: "mail"})
			return err
		}))
	h := acidictest.New(t, acidictest.Options{}, signup)

	if _, err := h.Enqueue(ctx, "signup", SignupArgs{Email: "ada@example.com"}, workflow.EnqueueOptions{}); err != nil {
		t.Fatal(err)
	}
	res := h.Drain(queue.DefaultQueue, queue.DrainOptions{})
	fmt.Println("signup jobs run:", res.Success)

	// Args matches jobs whose arguments contain these values.
	job := h.RequireEnqueued(acidictest.JobFilter{Kind: "email", Args: map[string]string{"to": "ada@example.com"}})
	fmt.Println("staged:", job.Kind, "on queue", job.Queue, "in state", job.State)
	// Output:
	// signup jobs run: 1
	// staged: email on queue mail in state available
}

// QuoteArgs are the arguments of the quote workflow of the examples.
type QuoteArgs struct {
	Items int `json:"items"`
}

// This example runs a workflow to its end in the test's goroutine: Perform
// enqueues the run and works every queue until nothing is left, retries
// included (without waiting for their backoff).
func ExampleHarness_Perform() {
	t := newExampleT() // in a test: the test's *testing.T
	defer t.finish()
	ctx := context.Background()

	quote := workflow.Define("quote", workflow.Options{},
		steps.Do("price", func(ctx context.Context, sc *steps.Context[QuoteArgs, struct{}]) error {
			if sc.Attempt() == 1 {
				return errors.New("price service unavailable")
			}
			return sc.SetResult(sc.Args.Items * 250)
		}))
	h := acidictest.New(t, acidictest.Options{}, quote)

	r, err := h.Perform(ctx, "quote", QuoteArgs{Items: 3})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(r.State, string(r.Result))
	fmt.Println("attempts:", r.Steps[0].Attempt)
	// Output:
	// succeeded 750
	// attempts: 2
}

// ReceiptArgs are the arguments of the receipt job of the examples.
type ReceiptArgs struct {
	OrderID int    `json:"order_id"`
	Email   string `json:"email"`
}

// errNoAddress is the receipt worker's error for an order without an email.
var errNoAddress = errors.New("no email address")

// This example unit-tests a worker: PerformWorker runs it on a job built in
// memory, as the enqueue would store it, and returns the worker's own error
// and the outcome the queue would record. Nothing is written, so a unique
// kind can be performed as often as the test likes.
func ExampleHarness_PerformWorker() {
	t := newExampleT() // in a test: the test's *testing.T
	defer t.finish()
	ctx := context.Background()

	h := acidictest.New(t, acidictest.Options{})
	err := queue.HandleArgs(h.Workers, "receipt", func(ctx context.Context, job *acidic.Job, a ReceiptArgs) error {
		if a.Email == "" {
			return fmt.Errorf("order %d: %w", a.OrderID, errNoAddress)
		}
		fmt.Printf("receipt for order %d to %s, attempt %d of %d\n", a.OrderID, a.Email, job.Attempt, job.MaxAttempts)
		return nil
	}, queue.KindOptions{MaxAttempts: 3, Unique: &queue.UniqueOptions{}})
	if err != nil {
		t.Fatal(err)
	}

	for range 2 {
		outcome, err := h.PerformWorker(ctx, "receipt", ReceiptArgs{OrderID: 1, Email: "ada@example.com"}, queue.EnqueueOptions{})
		fmt.Println(outcome, err)
	}
	outcome, err := h.PerformWorker(ctx, "receipt", ReceiptArgs{OrderID: 2}, queue.EnqueueOptions{})
	fmt.Println(outcome, errors.Is(err, errNoAddress))
	fmt.Println("jobs stored:", len(h.AllEnqueued(acidictest.JobFilter{States: queue.AllStates()})))
	// Output:
	// receipt for order 1 to ada@example.com, attempt 1 of 3
	// completed <nil>
	// receipt for order 1 to ada@example.com, attempt 1 of 3
	// completed <nil>
	// retry true
	// jobs stored: 0
}

// exampleT stands in for the *testing.T of a test, so that the examples run
// as examples: it fails by panicking, and finish runs its cleanups (the
// harness's schema is dropped in one).
type exampleT struct {
	testing.TB // nil: only the methods below are called
	cleanups   []func()
}

func newExampleT() *exampleT { return &exampleT{} }

func (t *exampleT) Name() string                      { return "example" }
func (t *exampleT) Helper()                           {}
func (t *exampleT) Failed() bool                      { return false }
func (t *exampleT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Log(args ...any)                   {}
func (t *exampleT) Logf(format string, args ...any)   {}
func (t *exampleT) Error(args ...any)                 { panic(fmt.Sprint(args...)) }
func (t *exampleT) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// finish runs the cleanups, last registered first, as the testing package
// does when a test ends.
func (t *exampleT) finish() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
