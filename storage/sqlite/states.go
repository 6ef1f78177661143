package sqlite

import "github.com/acidic-go/acidic"

// stateBit is a job state's bit in the unique_states column. It must match
// the CASE of the index jobs_unique_key (migration 0001) and of the fragment
// unique_live (sql/jobs.sql); TestStateBitsMatchTheIndex checks them against
// each other. They are the PostgreSQL driver's bits, so a store's rows mean
// the same on both.
func stateBit(s acidic.JobState) int64 {
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

// stateMask encodes a set of states for the unique_states column.
func stateMask(set acidic.JobStates) int64 {
	var m int64
	for _, s := range set.List() {
		m |= stateBit(s)
	}
	return m
}

// statesOf decodes the unique_states column.
func statesOf(mask int64) acidic.JobStates {
	var states []acidic.JobState
	for _, s := range acidic.AllJobStates {
		if mask&stateBit(s) != 0 {
			states = append(states, s)
		}
	}
	return acidic.NewJobStates(states...)
}
