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
//	        ▲   ▲                      │  │  │
//	 Retry  │   └── step error ────────┘  │  └── Cancel ─────────► cancelled
//	        │       (attempts left)       │
//	failed ◄┴──── attempts exhausted ─────┤
//	                                      └── await step ──► awaiting
//	                                               children done │
//	                                      pending ◄──────────────┘
//
// Halt leaves a run pending with no job; Retry resumes it. Failed and
// cancelled runs can be retried from their recovery point.
package run
