package storage

import (
	"encoding/json"

	"github.com/google/uuid"
)

// OutboxInsert is a message to stage.
type OutboxInsert struct {
	Topic   string
	Key     string
	Payload json.RawMessage
	RunID   uuid.UUID
	// Meta is stored with the message and handed to the Publisher
	// (acidic.OutboxMessage.Meta): one JSON value, a JSON object by
	// convention; nil stores none.
	Meta json.RawMessage
}

// OutboxClaim names one claim of a message: its id and the attempt number
// the claim gave it. Writes for a claim change nothing once another claim
// has taken the message.
type OutboxClaim struct {
	ID      int64
	Attempt int
}
