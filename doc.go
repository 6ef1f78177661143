// Package acidic is the vocabulary every part of Acidic shares: jobs, runs,
// steps and outbox messages as they are stored, their states, the filters
// that select them, and the errors a caller tests for with errors.Is.
//
// It holds types only. The engine is in package workflow, the job queue in
// package queue, and the contract a database driver meets in package
// storage; they all speak of the same acidic.Run and acidic.Job.
package acidic
