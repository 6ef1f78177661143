package storagetest

import (
	"errors"
	"testing"

	"github.com/acidic-go/acidic/storage"
)

// NewDriverFunc returns a driver on a fresh, migrated, empty store, which
// it removes when t ends (with t.Cleanup). Each call must return a new
// store: the suite's subtests run in parallel and count rows.
type NewDriverFunc func(t *testing.T) storage.Driver

// A conformance test: one contract, checked on stores made by newDriver.
type conformanceTest struct {
	name string
	fn   func(t *testing.T, newDriver NewDriverFunc)
}

// Run runs the conformance suite against drivers made by newDriver: each
// call returns a driver on a fresh, migrated, empty store. The subtests run
// in parallel, grouped by method (Jobs, Runs, Tx, Notify, Outbox, Capabilities,
// Migrate, Periodic, Nodes, JobAges, Controls, Retention, Limits, Unique,
// Awaits, StepLogs, SQL).
func Run(t *testing.T, newDriver func(t *testing.T) storage.Driver) {
	t.Helper()
	groups := []struct {
		name  string
		tests []conformanceTest
	}{
		{"Jobs", jobTests},
		{"Runs", runTests},
		{"Tx", txTests},
		{"Notify", notifyTests},
		{"Outbox", outboxTests},
		{"Capabilities", capabilityTests},
		{"Migrate", migrateTests},
		{"Periodic", periodicTests},
		{"Nodes", nodeTests},
		{"JobAges", jobAgeTests},
		{"Controls", controlTests},
		{"Retention", retentionTests},
		{"Limits", limitTests},
		{"Unique", uniqueTests}, // unique.go
		{"Awaits", awaitTests},
		{"StepLogs", stepLogTests}, // steplogs.go: step logs, failures, tags
		{"SQL", sqlTests},          // sql.go: the caller's own SQL
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			if g.name == "Notify" && newDriver(t).Capabilities().Notify == storage.NotifyNone {
				t.Skip("the driver declares no notifications (Capabilities.Notify); NotifyAsDeclared checks that")
			}
			for _, c := range g.tests {
				// Each test calls t.Parallel itself.
				t.Run(c.name, func(t *testing.T) { c.fn(t, newDriver) })
			}
		})
	}
}

var jobTests = []conformanceTest{
	{"JobInsertMany", testJobInsertMany},
	{"JobInsertManyWithRun", testJobInsertManyWithRun},
	{"JobInsertUnique", testJobInsertUnique},
	{"JobInsertUniqueConcurrent", testJobInsertUniqueConcurrent},
	{"JobFetchOrder", testJobFetchOrder},
	{"JobFetchRetryable", testJobFetchRetryable},
	{"JobFetchConcurrent", testJobFetchConcurrent},
	{"JobFetchLeasesFreeRuns", testJobFetchLeasesFreeRuns},
	{"JobFetchSkipRunJobs", testJobFetchSkipRunJobs},
	{"JobComplete", testJobComplete},
	{"JobFinish", testJobFinish},
	{"JobFinishFreesRunLease", testJobFinishFreesRunLease},
	{"JobHeartbeatAndRescue", testJobHeartbeatAndRescue},
	{"JobLostAttempts", testJobLostAttempts},
	{"JobRescueSkipRunJobs", testJobRescueSkipRunJobs},
	{"JobCancel", testJobCancel},
	{"JobRetry", testJobRetry},
	{"JobRetryCompleted", testJobRetryCompleted},
	{"JobList", testJobList},
	{"JobPrune", testJobPrune},
	{"JobWritesRefuseInvalidValues", testJobWritesRefuseInvalidValues},
	{"ResolveDependenciesFromEndedJobs", testResolveDependenciesFromEndedJobs},
}

var runTests = []conformanceTest{
	{"RunInsert", testRunInsert},
	{"RunInsertConcurrent", testRunInsertConcurrent},
	{"RunInsertIDTaken", testRunInsertIDTaken},
	{"RunInsertAttrs", testRunInsertAttrs}, // runattrs.go
	{"RunLease", testRunLease},
	{"RunUpdate", testRunUpdate},
	{"RunRelease", testRunRelease},
	{"RunEnd", testRunEnd},
	{"RunSettle", testRunSettle},
	{"RunSetState", testRunSetState},
	{"RunChildFinished", testRunChildFinished},
	{"RunList", testRunList},
	{"RunListPagingSameCreatedAt", testRunListPagingSameCreatedAt},
	{"RunWritesRefuseUnknownStates", testRunWritesRefuseUnknownStates},
}

var txTests = []conformanceTest{
	{"InTxErrorRollsBack", testInTxErrorRollsBack},
	{"InTxCommits", testInTxCommits},
	{"InStepTx", testInStepTx},
}

var notifyTests = []conformanceTest{
	{"ListenerInsert", testListenerInsert},
	{"NotifyTopicsAndStores", testNotifyTopicsAndStores},
	{"NotifyOnCommitOnly", testNotifyOnCommitOnly},
}

var outboxTests = []conformanceTest{
	{"Outbox", testOutbox},
	{"OutboxClaimConcurrent", testOutboxClaimConcurrent},
	{"OutboxMeta", testOutboxMeta},
}

var errBoom = errors.New("boom")
