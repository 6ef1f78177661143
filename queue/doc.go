// Package queue is Acidic's PostgreSQL job queue: enqueue jobs (also inside
// your own transaction), work them with per-queue concurrency, retry failures
// with backoff, and rescue jobs whose worker died.
//
// A Client enqueues; a Client with Queues configured and started also works
// jobs. A job kind is defined in one place, Workers.Handle: the function that
// works its jobs and its KindOptions, which every enqueue of the kind honours
// (queue, priority, attempts, uniqueness, ...) as well as how its jobs are
// worked (backoff, timeout).
//
// Unique jobs (UniqueOptions) are enforced by the database, forever, in fixed
// windows of a period, or for a period from the first insert; a dependency
// graph (Graph) may be unique as a whole by its Key.
//
// A Kind[A] is a kind typed by its arguments: declare it once
// (queue.NewKind[EmailArgs]("send_email")) and enqueue, batch, register
// and read jobs through it, so the compiler checks the arguments the API by
// name (Client.Enqueue(ctx, "send_email", args, opts)) takes as any value.
//
// # Job states
//
//	                   ScheduledAt passes
//	   scheduled ───────────────┐
//	       ▲                    ▼
//	Enqueue│            ┌──► available ◄────────── Retry (operator)
//	       │            │       │ fetch (FOR UPDATE SKIP LOCKED)
//	       │            │       ▼
//	       └── Snooze ──┴─── running ──── success ───► completed
//	                           │ │ └──── Cancel ─────► cancelled
//	     retryable ◄── error ──┘ └── error, no attempts left,
//	      │  ▲                        Discard, bad args ─► discarded
//	      │  └─ worker stopped heartbeating (rescue)
//	      └──── backoff passes: eligible again
//
// A scheduled or retryable job is fetched directly once its ScheduledAt has
// passed; no separate process moves it to available. Pending jobs wait for the
// jobs they depend on. Completed, cancelled and discarded are final; they are
// pruned after a retention period.
//
// # Nodes and the leader
//
// Every started Client is a node of its schema: it records a row (its host,
// process, version and queues with their workers busy and free) with its
// heartbeat, and takes part in the election of one leader, by a lease on the
// database's clock (Config.LeaderLease). Only the leader runs the
// maintenance (rescue, pruning) in the background; IsLeader tells whether
// this client leads. When the leader dies another node leads within the
// lease; one that stops cleanly hands the lead over at once. See
// docs/operations.md, "Leader" and "Nodes".
//
// # Guarantees
//
// Delivery is at least once: a job whose worker dies is rescued and run again.
// Every write that ends an attempt is fenced by the job's state and attempt
// number, so a worker that lost its claim (it stopped heartbeating and its job
// was rescued) cannot overwrite what happened since. Work that must happen once
// belongs in a workflow (package workflow), whose run record makes each step's
// effects happen once.
package queue
