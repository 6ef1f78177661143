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
//	res, err := payment.Enqueue(ctx, eng, PaymentArgs{OrderID: "o-1"}, workflow.EnqueueOptions{})
//	done, err := payment.Wait(ctx, eng, res.Run.ID) // done.Args, done.Attrs: decoded
//
// # Typed handles and the API by name
//
// The *Workflow[A, S] that Define returns is the workflow's typed handle:
// its Enqueue, EnqueueTx, Get, GetByKey and Wait take arguments of type A
// and return a RunOf[A, S], the run with its arguments and persisted state
// decoded; Request makes a run request for a step's Await or EnqueueRun.
// The compiler checks what Engine.Enqueue, which takes a workflow's name
// and any arguments, checks only at run time; keep the by-name API for
// tools. A handle is usable with an engine that has its workflow registered
// (it, or a workflow of the same name and types): otherwise its calls are
// ErrUnknownWorkflow and write nothing.
//
// Steps are given to Define, or added to the handle before Register with
// Step, Await, AwaitRuns and Add, the types then given once:
// Define[A, S](name, opts).Step("charge", ...). To write steps as methods
// of a value of yours that embeds the step context, see steps.Bind.
//
// Each step commits in its own SERIALIZABLE transaction together with the
// run's recovery point. A run whose step failed, or whose worker died, resumes
// at the first step that did not commit. The queue delivers at least once;
// the run record makes each step's effects happen once.
package workflow
