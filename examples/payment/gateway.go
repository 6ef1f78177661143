package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync/atomic"

	"github.com/acidic-go/acidic/storage"
)

// gateway is a fake payment gateway. A real gateway is somebody else's
// system: once it has charged a card, the charge stays made, whatever happens
// to our transaction afterwards. To be honest about that, this one writes its
// table outside any transaction of a step (db is the store's SQL, each
// statement committed on its own: storage.SQLOf(drv)), so a step that rolls
// back does not roll the charge back.
type gateway struct {
	db      storage.SQL
	schema  string
	created atomic.Int64 // new charges made by this process
}

// charge is what the gateway answers.
type charge struct {
	ID          string
	AmountCents int
	// New is false when the idempotency key was seen before and the gateway
	// returned the earlier charge instead of charging again.
	New bool
}

// newGateway returns a gateway keeping its charges in schema, creating its
// table if missing.
func newGateway(ctx context.Context, db storage.SQL, schema string) (*gateway, error) {
	g := &gateway{db: db, schema: schema}
	_, err := db.Exec(ctx, g.sql(`CREATE TABLE IF NOT EXISTS {schema}.gateway_charges (
		idempotency_key TEXT   PRIMARY KEY,
		charge_id       TEXT   NOT NULL,
		amount_cents    BIGINT NOT NULL)`))
	if err != nil {
		return nil, fmt.Errorf("gateway: create table: %w", err)
	}
	return g, nil
}

// Charge charges amountCents under an idempotency key. Like real gateways
// (think of Stripe's Idempotency-Key header), a key it has seen returns the
// charge it made then instead of charging again; reusing a key for another
// amount is an error.
func (g *gateway) Charge(ctx context.Context, key string, amountCents int) (charge, error) {
	id := "ch_" + randomHex(6)
	n, err := g.db.Exec(ctx, g.sql(`INSERT INTO {schema}.gateway_charges (idempotency_key, charge_id, amount_cents)
		VALUES ($1, $2, $3) ON CONFLICT (idempotency_key) DO NOTHING`), key, id, amountCents)
	switch {
	case err != nil:
		return charge{}, fmt.Errorf("gateway: charge: %w", err)
	case n == 1:
		g.created.Add(1)
		return charge{ID: id, AmountCents: amountCents, New: true}, nil
	}
	// The key exists: replay the earlier charge.
	c := charge{}
	err = g.db.QueryRow(ctx, g.sql(`SELECT charge_id, amount_cents FROM {schema}.gateway_charges WHERE idempotency_key = $1`),
		key).Scan(&c.ID, &c.AmountCents)
	if err != nil {
		return charge{}, fmt.Errorf("gateway: look up key %q: %w", key, err)
	}
	if c.AmountCents != amountCents {
		return charge{}, fmt.Errorf("gateway: idempotency key %q was used for %d cents, not %d", key, c.AmountCents, amountCents)
	}
	return c, nil
}

// Charges counts the charges made, by any process, under keys that start with
// prefix (which holds no LIKE wildcard: a run id does not). A step's idempotency key starts with its run's id, so passing the
// run id counts every charge the run made, whatever key it used.
func (g *gateway) Charges(ctx context.Context, prefix string) (int, error) {
	var n int
	err := g.db.QueryRow(ctx, g.sql(`SELECT count(*) FROM {schema}.gateway_charges WHERE idempotency_key LIKE $1`),
		prefix+"%").Scan(&n)
	return n, err
}

// Created counts the new charges (not replays) this process made.
func (g *gateway) Created() int { return int(g.created.Load()) }

func (g *gateway) sql(s string) string { return inSchema(g.schema, s) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
