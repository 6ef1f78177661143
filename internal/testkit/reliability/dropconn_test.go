package reliability

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic/internal/testkit/testdb"
)

// TestDroppedConnections: two engines work N chaos runs while every
// connection of theirs (found by the application name set on their pools) is
// terminated with pg_terminate_backend every 50-250ms, mid-step or not. The
// pools reconnect, failed steps roll back and are retried, and every run
// succeeds with each effect exactly once.
func TestDroppedConnections(t *testing.T) {
	started := time.Now()
	n := pick(60, 300)
	drv := testdb.New(t, testdb.Options{MaxConns: 6})
	admin := drv.Pool()
	schema := drv.Schema()
	createScenarioTables(t, admin, schema)

	ef := &effector{schema: schema, side: admin, actor: "engine", sleep: 20 * time.Millisecond}
	ids := enqueueChaos(t, drv, ef, n)

	app := "acidic-reliability-" + randHex(6)
	set := startEngines(t, testURL(), schema, app, 2, 4, ef, resilientEngineConfig, nil)

	done := make(chan struct{})
	var killer sync.WaitGroup
	var mu sync.Mutex
	kills, rounds := 0, 0
	killer.Add(1)
	go func() {
		defer killer.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Duration(50+rand.IntN(201)) * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			rows, err := admin.Query(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"+
				" WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()", app)
			if err == nil {
				k := 0
				for rows.Next() {
					var ok bool
					if rows.Scan(&ok) == nil && ok {
						k++
					}
				}
				rows.Close()
				mu.Lock()
				kills += k
				rounds++
				mu.Unlock()
			}
			cancel()
		}
	}()

	ok, saw := waitChaos(t, admin, schema, n, stallTimeout(), pick(3*time.Minute, 10*time.Minute))
	close(done)
	killer.Wait()
	if !ok {
		t.Errorf("did not finish: %s; unfinished runs:%s\n%s", saw, describeStuck(t, admin, schema), set.logSummary())
	}
	dups, lost := verifyChaos(t, admin, schema, ids)
	if kills == 0 {
		t.Errorf("no connection was terminated")
	}
	t.Logf("reliability: scenario=dropped-connections terminate_rounds=%d step_failures=%d listener_reconnects=%d",
		rounds, set.logged("workflow: step failed"), set.logged("queue: listener lost; reconnecting"))
	if t.Failed() {
		t.Logf("%s", set.logSummary())
	}
	report(t, counts{scenario: "dropped-connections", runs: n, kills: kills, txRetries: set.txRetries(), duplicates: dups, lost: lost}, started)
}
