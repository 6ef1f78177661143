package storage

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// OutboxMessage is a message staged for a system outside the database.
type OutboxMessage struct {
	ID int64
	// Topic names the destination (a broker topic, a webhook, a mailer).
	Topic string
	// Key orders delivery: messages with one key are delivered one at a
	// time, in id order. Ids are taken at insert, so two transactions that
	// stage messages for one key at the same time may commit out of id
	// order; stage a key's messages from one run at a time to avoid that.
	Key     string
	Payload json.RawMessage
	// RunID is the run whose step staged the message, if any.
	RunID uuid.UUID
	// Attempts counts delivery attempts so far.
	Attempts      int
	NextAttemptAt time.Time
	DeliveredAt   *time.Time
	LastError     string
	CreatedAt     time.Time
}

// OutboxInsert is a message to stage.
type OutboxInsert struct {
	Topic   string
	Key     string
	Payload json.RawMessage
	RunID   uuid.UUID
}

// OutboxClaim names one claim of a message: its id and the attempt number
// the claim gave it. Writes for a claim change nothing once another claim
// has taken the message.
type OutboxClaim struct {
	ID      int64
	Attempt int
}
