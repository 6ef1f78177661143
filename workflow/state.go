package workflow

import (
	"encoding/json"
	"fmt"
)

// WithState returns a copy of opts that starts the run with state s: its
// first step sees s in sc.State. It is EnqueueOptions.State with the
// compiler checking that s is of the workflow's state type.
//
//	res, err := eng.Enqueue(ctx, wf.Name(), args, wf.WithState(workflow.EnqueueOptions{}, State{Items: items}))
func (w *Workflow[A, S]) WithState(opts EnqueueOptions, s S) EnqueueOptions {
	opts.State = s
	return opts
}

func (w *Workflow[A, S]) decodeState(raw json.RawMessage) error {
	_, err := decode[S](raw)
	return err
}

// initialState encodes state, an enqueue's initial state for d's runs, and
// checks that it decodes into d's state type; nil is none (JSON null).
func initialState(d Definition, state any) (json.RawMessage, error) {
	if state == nil {
		return nil, nil
	}
	raw, ok := state.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(state); err != nil {
			return nil, err
		}
	} else if !json.Valid(raw) {
		return nil, fmt.Errorf("not valid JSON")
	}
	if err := d.decodeState(raw); err != nil {
		return nil, err
	}
	return raw, nil
}
