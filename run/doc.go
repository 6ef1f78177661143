// Package run manages the run record: one row per idempotency key that holds
// a workflow run's arguments, state, recovery point (the next step to run),
// persisted state and lock lease.
//
// A run is found or created by its idempotency key (see Strategy): the same key
// with the same arguments returns the existing run, the same key with other
// arguments is ErrMismatchedArgs. A worker executes a run only while it holds
// the run's lease (Acquire); every write of progress presents the lease token,
// so a worker whose lease was taken over cannot commit.
//
// # Run states
//
//	        Enqueue
//	           │
//	           ▼          lease taken
//	       pending ─────────────────► running ──── last step ───► succeeded
//	        ▲   ▲                      │ │ │ │
//	 Retry  │   └── step error ────────┘ │ │ └── its job ends for good ─► failed / cancelled
//	        │       (attempts left)      │ │     (attempts out, Cancel, rescue, ...)
//	halted, │                            │ └── Halt ──► halted (only Retry or Cancel move it)
//	failed, ┘                            └── await step ──► awaiting
//	cancelled                                      children done │
//	                                      pending ◄──────────────┘
//
// The transitions and who writes each are listed in package workflow
// (lifecycle.go) and docs/architecture.md. Failed, cancelled and halted runs
// can be retried from their recovery point.
package run
