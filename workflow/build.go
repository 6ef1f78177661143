package workflow

import (
	"context"
	"fmt"
	"slices"

	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
)

// Step adds a plain step (steps.Do) at the end of w and returns w. With a
// workflow defined as Define[A, S](name, opts), the step's function needs no
// type arguments of its own, and a function of another workflow's types does
// not compile.
//
// Steps are added until w is registered: adding one after Register panics,
// since engines already run w's list of steps.
func (w *Workflow[A, S]) Step(name string, fn steps.Func[A, S]) *Workflow[A, S] {
	return w.Add(steps.Do(name, fn))
}

// Await adds an await step (steps.Await) at the end of w and returns w:
// children returns the runs to await (use another workflow's Request to
// make them).
func (w *Workflow[A, S]) Await(name string, children func(ctx context.Context, sc *steps.Context[A, S]) ([]steps.RunRequest, error), opts steps.AwaitOptions) *Workflow[A, S] {
	return w.Add(steps.Await(name, children, opts))
}

// AwaitRuns adds a step awaiting a fixed list of runs (steps.AwaitRuns) at
// the end of w and returns w.
func (w *Workflow[A, S]) AwaitRuns(name string, opts steps.AwaitOptions, reqs ...steps.RunRequest) *Workflow[A, S] {
	return w.Add(steps.AwaitRuns[A, S](name, opts, reqs...))
}

// AwaitJobs adds a step awaiting a fixed list of queue jobs
// (steps.AwaitJobs) at the end of w and returns w. Make the jobs with a
// queue.Kind's Params; no type parameters are needed:
//
//	w.AwaitJobs("notify", steps.AwaitOptions{}, sendEmail.Params(email, opts), sendSMS.Params(sms, opts))
func (w *Workflow[A, S]) AwaitJobs(name string, opts steps.AwaitOptions, jobs ...queue.EnqueueParams) *Workflow[A, S] {
	return w.Add(steps.AwaitJobs[A, S](name, opts, jobs...))
}

// AwaitJobsFunc adds an await step (steps.AwaitJobsFunc) at the end of w and
// returns w: jobs returns the queue jobs to await.
func (w *Workflow[A, S]) AwaitJobsFunc(name string, jobs func(ctx context.Context, sc *steps.Context[A, S]) ([]queue.EnqueueParams, error), opts steps.AwaitOptions) *Workflow[A, S] {
	return w.Add(steps.AwaitJobsFunc(name, jobs, opts))
}

// Add adds steps of any kind (a steps.ForEach, steps made with a
// steps.Binder) at the end of w and returns w. It panics once w is
// registered, as Step does.
func (w *Workflow[A, S]) Add(list ...steps.Step[A, S]) *Workflow[A, S] {
	if w.sealed.Load() {
		panic(fmt.Sprintf("workflow: steps added to workflow %q after Register", w.name))
	}
	// Clipped, so that the caller's slice behind Define's list is never
	// written to.
	w.steps = append(slices.Clip(w.steps), list...)
	w.hash = hashSteps(w.stepNames())
	return w
}
