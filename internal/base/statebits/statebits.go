// Package statebits is how the drivers store a set of job states (a unique
// job's acidic.JobStates) in a column: one bit per state. The bits are part
// of the stored data: PostgreSQL's job_state_bit function and the SQLite
// driver's unique index read them, so they never change, and a store's rows
// mean the same on both drivers. They are kept apart from acidic.JobStates
// so that neither constrains the other.
package statebits

import "github.com/acidic-go/acidic"

// Bit is the state's bit; 0 for an unknown state.
func Bit(s acidic.JobState) int64 {
	switch s {
	case acidic.JobAvailable:
		return 1
	case acidic.JobScheduled:
		return 2
	case acidic.JobRunning:
		return 4
	case acidic.JobRetryable:
		return 8
	case acidic.JobCompleted:
		return 16
	case acidic.JobCancelled:
		return 32
	case acidic.JobDiscarded:
		return 64
	case acidic.JobPending:
		return 128
	}
	return 0
}

// Mask encodes a set of states.
func Mask(set acidic.JobStates) int64 {
	var m int64
	for _, s := range set.List() {
		m |= Bit(s)
	}
	return m
}

// Set decodes a mask.
func Set(mask int64) acidic.JobStates {
	var states []acidic.JobState
	for _, s := range acidic.AllJobStates {
		if mask&Bit(s) != 0 {
			states = append(states, s)
		}
	}
	return acidic.NewJobStates(states...)
}
