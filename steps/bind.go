package steps

import (
	"context"

	"github.com/acidic-go/acidic/queue"
)

// Binder makes steps whose code is a method of R, a value made afresh for
// every execution of a step from the step's context. R is usually a struct
// of yours that embeds *Context[A, S] (so its methods read r.Args, r.State,
// r.IdempotencyKey(), r.Tx() directly) and holds what the steps use: the
// types of the workflow are written once, in R, and every step is a method
// without type parameters, as in an AcidicJob class.
//
//	type rideRun struct {
//		*steps.Context[RideArgs, RideState]
//		stripe *Stripe
//	}
//
//	func (r rideRun) charge(ctx context.Context) error {
//		ch, err := r.stripe.Charge(ctx, r.Args.Cents, r.IdempotencyKey())
//		...
//		r.State.ChargeID = ch.ID
//		return nil
//	}
//
//	on := steps.Bind(func(sc *steps.Context[RideArgs, RideState]) rideRun { return rideRun{sc, stripe} })
//	ride := workflow.Define("ride", workflow.Options{},
//		on.Do("create_ride", rideRun.createRide),
//		on.Do("charge", rideRun.charge),
//		on.Do("send_receipt", rideRun.sendReceipt),
//	)
//
// The methods are passed as method expressions (rideRun.charge), whose type
// func(rideRun, context.Context) error the compiler checks against R.
type Binder[A, S, R any] struct {
	bind func(sc *Context[A, S]) R
}

// Bind returns a Binder that makes each step's R with bind.
func Bind[A, S, R any](bind func(sc *Context[A, S]) R) Binder[A, S, R] {
	return Binder[A, S, R]{bind: bind}
}

// Func returns the step function that calls method on the step's R.
// A nil method, or a Binder without a bind function, makes a nil Func,
// which Validate (and so workflow.Engine.Register) refuses.
func (b Binder[A, S, R]) Func(method func(r R, ctx context.Context) error) Func[A, S] {
	if method == nil || b.bind == nil {
		return nil
	}
	return func(ctx context.Context, sc *Context[A, S]) error {
		return method(b.bind(sc), ctx)
	}
}

// Do returns a plain step (see the package function Do) whose code is
// method.
func (b Binder[A, S, R]) Do(name string, method func(r R, ctx context.Context) error) Step[A, S] {
	return Do(name, b.Func(method))
}

// Await returns an await step (see the package function Await) whose
// children method returns the runs to await.
func (b Binder[A, S, R]) Await(name string, children func(r R, ctx context.Context) ([]RunRequest, error), opts AwaitOptions) Step[A, S] {
	if children == nil || b.bind == nil {
		return Step[A, S]{name: name, await: &opts}
	}
	return Await(name, func(ctx context.Context, sc *Context[A, S]) ([]RunRequest, error) {
		return children(b.bind(sc), ctx)
	}, opts)
}

// AwaitJobs returns a step awaiting a fixed list of queue jobs (see the
// package function AwaitJobs), without type parameters:
//
//	on.AwaitJobs("notify", steps.AwaitOptions{}, sendEmail.Params(args, opts), sendSMS.Params(args, opts))
func (b Binder[A, S, R]) AwaitJobs(name string, opts AwaitOptions, jobs ...queue.EnqueueParams) Step[A, S] {
	return AwaitJobs[A, S](name, opts, jobs...)
}

// AwaitJobsFunc returns an await step (see the package function
// AwaitJobsFunc) whose jobs method returns the queue jobs to await.
func (b Binder[A, S, R]) AwaitJobsFunc(name string, jobs func(r R, ctx context.Context) ([]queue.EnqueueParams, error), opts AwaitOptions) Step[A, S] {
	if jobs == nil || b.bind == nil {
		return Step[A, S]{name: name, await: &opts}
	}
	return AwaitJobsFunc(name, func(ctx context.Context, sc *Context[A, S]) ([]queue.EnqueueParams, error) {
		return jobs(b.bind(sc), ctx)
	}, opts)
}
