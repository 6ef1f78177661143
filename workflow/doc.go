// Package workflow is Acidic's front door: define a workflow as an ordered
// list of steps, register it with an Engine, enqueue runs, and let the engine
// execute them on the job queue.
//
//	payment := workflow.Define("payment", workflow.Options{Key: run.ByArgs()},
//		steps.Do("charge", charge),
//		steps.Do("ledger", writeLedger),
//		steps.Do("receipt", sendReceipt),
//	)
//	eng, _ := workflow.NewEngine(drv, workflow.Config{Queue: queue.Config{
//		Queues: map[string]queue.QueueConfig{"default": {MaxWorkers: 8}},
//	}})
//	_ = eng.Register(payment)
//	_ = eng.Start(ctx)
//	res, err := eng.Enqueue(ctx, "payment", PaymentArgs{OrderID: "o-1"}, workflow.EnqueueOptions{})
//
// Each step commits in its own SERIALIZABLE transaction together with the
// run's recovery point. A run whose step failed, or whose worker died, resumes
// at the first step that did not commit. The queue delivers at least once;
// the run record makes each step's effects happen once.
package workflow
