// Package outbox delivers messages staged in the database to systems outside
// it (a message broker, a webhook, a mailer): the transactional outbox.
//
// A workflow step stages a message with steps.Context.Publish (any code may
// call storage.Executor.OutboxInsert in its own transaction). A Relay, started
// in any number of processes, claims staged messages and hands them to a
// Publisher, then records the outcome.
//
// # Guarantees
//
//   - A message exists only if the transaction that staged it committed: a
//     step that fails (and rolls back) leaves no message, so nothing is ever
//     published for work that did not happen.
//   - Every message is delivered at least once. A publish that fails is
//     retried with backoff until it succeeds; a relay that dies, or a
//     publish that outlives its Lease, lets another relay claim the message
//     again. A Publisher may therefore see a message more than once (for
//     example when the process dies between the publish and the database
//     write that confirms it): make Publish idempotent on Message.ID, or
//     tolerate duplicates downstream.
//   - Messages of one key are delivered in order: a message is handed to a
//     Publisher only after every earlier message of its key was confirmed
//     delivered. A failing message holds back the messages behind it in its
//     key (and only in its key) until it succeeds. "Earlier" is id order,
//     which is commit order for transactions that follow one another; two
//     transactions staging messages of one key concurrently are not ordered
//     against each other (a message with a smaller id may commit, and so be
//     delivered, after one with a larger id). Stage a key's messages from one
//     run, or serialize the transactions, when their order matters.
//     Duplicates are the one exception to strict order: a publish that
//     outlived its lease may still land after a later message of its key,
//     delivered by another relay meanwhile.
//   - A message is deleted (pruned) only after its delivery was confirmed, and
//     only once it has been delivered for longer than Config.Retention.
//
// # Relays
//
// A Relay listens for the notification OutboxInsert sends on commit
// (storage.TopicOutbox), so messages usually go out within milliseconds; it
// also polls every PollInterval, which finds messages whose retry time came
// and covers notifications lost while its listener reconnects. Several relays
// may run on one schema: the claim query skips messages another relay holds,
// so they share the work.
//
// Each claim returns at most one message per key (the oldest undelivered
// message of each key that is due), so the messages of a batch are all of
// different keys and the relay publishes them concurrently, up to
// Config.Concurrency at once.
package outbox
