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
package steps
