// Package steps defines the steps of a workflow and the context a step's code
// receives.
//
// A step is a name and a function. The engine runs each step in its own
// SERIALIZABLE transaction together with the run's new recovery point and
// persisted state: either all of the step's database writes and the progress
// commit, or none do. A step that committed never runs again for that run.
//
//	steps.Do("charge", func(ctx context.Context, sc *steps.Context[Args, State]) error {
//		charge, err := gateway.Charge(ctx, sc.Args.Amount, sc.IdempotencyKey())
//		if err != nil {
//			return err // rolled back; the job retries this step with backoff
//		}
//		sc.State.ChargeID = charge.ID // persisted with the step
//		return nil
//	})
//
// A step returns nil to go on to the next step, an error to roll back and
// retry, or one of the control results: Halt, Repeat, Snooze and Cancel.
//
// A step's function names its context's types, *Context[Args, State]. To
// write them once per workflow, make the steps methods of a struct that
// embeds the context and bind it (see Bind):
//
//	type paymentRun struct {
//		*steps.Context[Args, State]
//		gateway *Gateway
//	}
//
//	func (r paymentRun) charge(ctx context.Context) error { ... r.Args, r.State, r.IdempotencyKey() ... }
//
//	on := steps.Bind(func(sc *steps.Context[Args, State]) paymentRun { return paymentRun{sc, gw} })
//	payment := workflow.Define("payment", opts, on.Do("charge", paymentRun.charge), ...)
package steps
