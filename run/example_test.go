package run_test

import (
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic/run"
)

// This example derives idempotency keys from whole arguments, as a workflow
// with Options{Key: run.ByArgs()} does for every enqueue: equal arguments
// make one key, whatever the order of their fields, so they make one run.
func ExampleByArgs() {
	key := run.ByArgs()
	// The engine passes the new run's id; ByArgs ignores it.
	a, err := key.Key("checkout", json.RawMessage(`{"order": 42, "currency": "EUR"}`), uuid.New())
	if err != nil {
		panic(err)
	}
	b, _ := key.Key("checkout", json.RawMessage(`{"currency":"EUR","order":42}`), uuid.New())
	c, _ := key.Key("checkout", json.RawMessage(`{"currency":"EUR","order":43}`), uuid.New())
	fmt.Println(a)
	fmt.Println("same arguments, other order:", a == b)
	fmt.Println("other arguments:", a == c)
	// Output:
	// checkout:args:cbe1559c25e6403061cb00bdf027d865b828e1629522369a8ac97b987332578e
	// same arguments, other order: true
	// other arguments: false
}

// CheckoutArgs are the arguments of the checkout workflow of the examples.
type CheckoutArgs struct {
	Order int    `json:"order"`
	Note  string `json:"note"`
}

// This example derives idempotency keys from one field of the arguments:
// two enqueues for the same order make one run, whatever their notes say.
// The workflow's name prefixes the key.
func ExampleBy() {
	key := run.By(func(a CheckoutArgs) (string, error) {
		return fmt.Sprintf("order-%d", a.Order), nil
	})
	a, err := key.Key("checkout", json.RawMessage(`{"order":42,"note":"gift wrap"}`), uuid.New())
	if err != nil {
		panic(err)
	}
	b, _ := key.Key("checkout", json.RawMessage(`{"order":42,"note":"no wrap"}`), uuid.New())
	fmt.Println(a)
	fmt.Println("same order:", a == b)
	// Output:
	// checkout:order-42
	// same order: true
}

// This example shows the default key: the new run's own id, so every
// enqueue makes a new run.
func ExampleByJobID() {
	runID := uuid.MustParse("0f8fad5b-d9cb-469f-a165-70867728950e")
	k, err := run.ByJobID().Key("checkout", json.RawMessage(`{"order":42}`), runID)
	if err != nil {
		panic(err)
	}
	fmt.Println(k)
	// Output:
	// checkout:0f8fad5b-d9cb-469f-a165-70867728950e
}

// This example shows the canonical JSON that runs store and ByArgs hashes:
// keys sorted, no insignificant whitespace, numbers as jsonb keeps them.
func ExampleCanonical() {
	c, err := run.Canonical(json.RawMessage(` { "b": [1, 2.0], "a": "x y" } `))
	if err != nil {
		panic(err)
	}
	fmt.Println(string(c))
	// Output:
	// {"a":"x y","b":[1,2]}
}
