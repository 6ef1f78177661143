package queue_test

import (
	"context"
	"errors"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

// maintenanceCounter is a storage.Driver that counts the maintenance
// queries made through it.
type maintenanceCounter struct {
	storage.Driver
	mu    sync.Mutex
	calls map[string]int
}

func countMaintenance(drv storage.Driver) *maintenanceCounter {
	return &maintenanceCounter{Driver: drv, calls: map[string]int{}}
}

func (m *maintenanceCounter) count(op string) {
	m.mu.Lock()
	m.calls[op]++
	m.mu.Unlock()
}

// made returns the counts so far.
func (m *maintenanceCounter) made() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for k, v := range m.calls {
		out[k] = v
	}
	return out
}

func (m *maintenanceCounter) JobRescue(ctx context.Context, p storage.JobRescueParams) ([]*acidic.Job, error) {
	m.count("JobRescue")
	return m.Driver.JobRescue(ctx, p)
}

func (m *maintenanceCounter) JobPruneByState(ctx context.Context, p storage.JobPruneByStateParams) (int, error) {
	m.count("JobPruneByState")
	return m.Driver.JobPruneByState(ctx, p)
}

func (m *maintenanceCounter) JobResolveDependencies(ctx context.Context, p storage.JobResolveDependenciesParams) (int, int, error) {
	if p.Ended == nil { // the sweep; a cancel resolves the dependents of its job
		m.count("JobResolveDependencies")
	}
	return m.Driver.JobResolveDependencies(ctx, p)
}

func (m *maintenanceCounter) PeriodicList(ctx context.Context, p storage.PeriodicListParams) ([]*acidic.Periodic, error) {
	m.count("PeriodicList")
	return m.Driver.PeriodicList(ctx, p)
}

func (m *maintenanceCounter) NodePrune(ctx context.Context, p storage.NodePruneParams) (int, error) {
	m.count("NodePrune")
	return m.Driver.NodePrune(ctx, p)
}

// InTx counts a transaction that fires a periodic schedule (it locks the
// schedule with PeriodicDue) as "PeriodicFire", any other as "InTx" (a
// rescue with EndedFunc; these clients have none).
func (m *maintenanceCounter) InTx(ctx context.Context, iso storage.Isolation, fn storage.TxFunc) error {
	var fires bool
	err := m.Driver.InTx(ctx, iso, func(ctx context.Context, tx storage.Tx) error {
		return fn(ctx, periodicWatch{tx, &fires})
	})
	if fires {
		m.count("PeriodicFire")
	} else {
		m.count("InTx")
	}
	return err
}

// periodicWatch is a transaction that notes whether PeriodicDue was called.
type periodicWatch struct {
	storage.Tx
	called *bool
}

func (w periodicWatch) PeriodicDue(ctx context.Context, p storage.PeriodicDueParams) ([]*acidic.Periodic, error) {
	*w.called = true
	return w.Tx.PeriodicDue(ctx, p)
}

// ticks counts a client's maintenance ticks: those that ran a pass and
// those that did not.
type ticks struct{ ran, skipped atomic.Int64 }

func watchTicks(c *queue.Client) *ticks {
	var n ticks
	queue.OnMaintenanceTick(c, func(ran bool) {
		if ran {
			n.ran.Add(1)
		} else {
			n.skipped.Add(1)
		}
	})
	return &n
}

// nodeConfig is a client config whose maintenance ticks often, and whose
// lead never runs out during a test: it changes hands only when its holder
// resigns.
func nodeConfig(workers int) queue.Config {
	ws := queue.NewWorkers()
	_ = ws.Handle("noop", func(context.Context, *acidic.Job) error { return nil }, queue.KindOptions{})
	cfg := fastConfig(ws, workers)
	cfg.MaintenanceInterval = 5 * time.Millisecond
	cfg.LeaderLease = time.Hour
	return cfg
}

// waitFor polls cond until it holds, failing the test after a generous
// wait; it never asserts how fast.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Of two started clients, the one that leads runs every maintenance query
// and the other runs none, while both tick.
func TestOnlyTheLeaderMaintains(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		da, db := countMaintenance(drv), countMaintenance(drv)
		cfgA, cfgB := nodeConfig(1), nodeConfig(1)
		for _, cfg := range []*queue.Config{&cfgA, &cfgB} {
			cfg.Periodic = []queue.PeriodicJob{{Name: "every-second", Spec: "@every 1s", Kind: "noop"}}
		}
		a, b := newClient(t, da, cfgA), newClient(t, db, cfgB)
		ta, tb := watchTicks(a), watchTicks(b)
		start(t, a)
		waitFor(t, "a to lead", a.IsLeader)
		start(t, b)
		waitFor(t, "20 ticks of each", func() bool { return ta.ran.Load() >= 20 && tb.skipped.Load() >= 20 })
		if b.IsLeader() || tb.ran.Load() != 0 {
			t.Fatalf("b leads (%v) or ran %d passes while a leads", b.IsLeader(), tb.ran.Load())
		}
		// Its first periodic pass registers its schedules; none follows. That
		// pass may find the schedule due (b started a second or more after
		// a registered it, which a loaded machine can make happen) and fire
		// it, in a transaction of its own.
		waitFor(t, "5 periodic passes of the leader", func() bool { return da.made()["PeriodicList"] >= 5 })
		got := db.made()
		if fires := got["PeriodicFire"]; fires <= 1 {
			delete(got, "PeriodicFire")
		}
		if len(got) != 1 || got["PeriodicList"] != 1 {
			t.Errorf("the client that does not lead ran maintenance queries beyond its first periodic pass: %v", db.made())
		}
		got = da.made()
		for _, op := range []string{"JobRescue", "JobPruneByState", "JobResolveDependencies", "NodePrune", "PeriodicList"} {
			if got[op] == 0 {
				t.Errorf("the leader made no %s call (it made %v)", op, got)
			}
		}
		l, err := drv.LeaderGet(ctxT(t), storage.LeaderGetParams{})
		if err != nil || l.NodeID != a.ID() {
			t.Fatalf("LeaderGet = %+v, %v; want %s", l, err, a.ID())
		}
	})
}

// A client that stops cleanly hands the lead over at once: its resignation
// wakes the other nodes, and one of them leads, although the lease it held
// had an hour left.
func TestCleanStopHandsOverTheLead(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		drv, listening := watchListening(drv)
		a, b, c := newClient(t, drv, nodeConfig(1)), newClient(t, drv, nodeConfig(1)), newClient(t, drv, nodeConfig(1))
		start(t, a)
		waitFor(t, "a to lead", a.IsLeader)
		tb, tc := watchTicks(b), watchTicks(c)
		start(t, b)
		start(t, c)
		waitFor(t, "b and c to tick", func() bool { return tb.skipped.Load() > 0 && tc.skipped.Load() > 0 })
		// Every listener subscribed (control is the last topic), so that none
		// learns of the resignation only by (re)connecting.
		for range 3 {
			listening(t)
		}
		before, err := drv.LeaderGet(ctxT(t), storage.LeaderGetParams{})
		if err != nil || before.NodeID != a.ID() || before.ExpiresIn < 50*time.Minute {
			t.Fatalf("before the stop: leader %+v, %v; want %s with most of an hour left", before, err, a.ID())
		}

		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Stop(stopCtx); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if a.IsLeader() {
			t.Fatal("a leads after its stop")
		}
		waitFor(t, "b or c to lead", func() bool { return b.IsLeader() || c.IsLeader() })
		if b.IsLeader() && c.IsLeader() {
			t.Fatal("b and c both lead")
		}
		next := b
		if c.IsLeader() {
			next = c
		}
		after, err := drv.LeaderGet(ctxT(t), storage.LeaderGetParams{})
		if err != nil || after.NodeID != next.ID() || !after.ElectedAt.After(before.ElectedAt) {
			t.Fatalf("after the stop: leader %+v, %v; want %s, elected after %v", after, err, next.ID(), before.ElectedAt)
		}
		ticks := tb
		if next == c {
			ticks = tc
		}
		waitFor(t, "the new leader to maintain", func() bool { return ticks.ran.Load() > 0 })
	})
}

// A started client records its node row at once and with every heartbeat:
// its host, process, version and queues with their workers busy and free.
// The leader deletes the rows of nodes that stopped heartbeating (and only
// those); a clean stop deletes the node's own row and its lead.
func TestNodeRows(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		release := make(chan struct{})
		ws := queue.NewWorkers()
		_ = ws.Handle("block", func(ctx context.Context, _ *acidic.Job) error {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}, queue.KindOptions{})
		cfg := fastConfig(ws, 3)
		cfg.Queues["mail"] = queue.QueueConfig{MaxWorkers: 1}
		cfg.MaintenanceInterval = 5 * time.Millisecond
		c := newClient(t, drv, cfg)
		start(t, c)

		row := func() *acidic.Node {
			t.Helper()
			nodes, err := drv.NodeList(ctx, storage.NodeListParams{})
			if err != nil {
				t.Fatalf("NodeList: %v", err)
			}
			for _, n := range nodes {
				if n.ID == c.ID() {
					return n
				}
			}
			return nil
		}
		waitFor(t, "the node's row", func() bool { return row() != nil })
		first := row()
		host, _ := os.Hostname()
		want := []acidic.NodeQueue{{Queue: "default", MaxWorkers: 3}, {Queue: "mail", MaxWorkers: 1}}
		if first.Hostname != host || first.PID != os.Getpid() || first.Version != acidic.Version || !reflect.DeepEqual(first.Queues, want) || !first.Live() {
			t.Fatalf("node row %+v; want host %q, pid %d, version %s, queues %+v, live", first, host, os.Getpid(), acidic.Version, want)
		}

		job, err := c.Enqueue(ctx, "block", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the row to show the job running", func() bool {
			n := row()
			return n != nil && n.WorkersBusy() == 1 && n.Queues[0].Busy == 1 && n.WorkersFree() == 3
		})
		if n := row(); !n.HeartbeatAt.After(first.HeartbeatAt) || !n.StartedAt.Equal(first.StartedAt) {
			t.Errorf("refreshed row: heartbeat %v (first %v), started %v (first %v); want the heartbeat moved, the start kept",
				n.HeartbeatAt, first.HeartbeatAt, n.StartedAt, first.StartedAt)
		}

		// Two other nodes: one that stopped heartbeating, one that lives.
		for _, p := range []storage.NodeRecordParams{
			{ID: "dead-node", Version: "0.0.1", TTL: time.Microsecond},
			{ID: "other-node", Version: "0.0.1", TTL: time.Hour},
		} {
			if _, err := drv.NodeRecord(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "the leader to delete the dead node's row", func() bool {
			nodes, err := drv.NodeList(ctx, storage.NodeListParams{})
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range nodes {
				if n.ID == "dead-node" {
					return false
				}
			}
			return true
		})
		if !c.IsLeader() {
			t.Error("the only node does not lead")
		}

		close(release)
		waitJob(t, drv, job.ID, acidic.JobCompleted)
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(stopCtx); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		nodes, err := drv.NodeList(ctx, storage.NodeListParams{})
		if err != nil || len(nodes) != 1 || nodes[0].ID != "other-node" {
			t.Fatalf("after the stop: nodes %v, %v; want only other-node's", nodeNames(nodes), err)
		}
		if l, err := drv.LeaderGet(ctx, storage.LeaderGetParams{}); !errors.Is(err, acidic.ErrNotFound) {
			t.Fatalf("after the stop: leader %+v, %v; want none", l, err)
		}
	})
}

func nodeNames(nodes []*acidic.Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.ID)
	}
	return out
}

// A started client that works no queue (it only enqueues) is a node too:
// it records its row, with no queues, and may lead.
func TestInsertOnlyClientIsANode(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		c := newClient(t, drv, queue.Config{HeartbeatInterval: 20 * time.Millisecond, Logger: quietLogger()})
		start(t, c)
		waitFor(t, "the client to lead", c.IsLeader)
		var nodes []*acidic.Node
		var err error
		waitFor(t, "the client's row", func() bool {
			nodes, err = drv.NodeList(ctxT(t), storage.NodeListParams{})
			return err != nil || len(nodes) > 0
		})
		if err != nil || len(nodes) != 1 || nodes[0].ID != c.ID() || len(nodes[0].Queues) != 0 {
			t.Fatalf("nodes %+v, %v; want the client's, with no queues", nodes, err)
		}
	})
}

// LeaderLease below a millisecond is refused.
func TestLeaderLeaseValidation(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		for _, lease := range []time.Duration{-time.Second, time.Microsecond} {
			_, err := queue.New(drv, queue.Config{LeaderLease: lease})
			if !errors.Is(err, queue.ErrInvalid) {
				t.Errorf("LeaderLease %s: %v, want ErrInvalid", lease, err)
			}
		}
		if _, err := queue.New(drv, queue.Config{LeaderLease: time.Millisecond}); err != nil {
			t.Errorf("LeaderLease 1ms: %v", err)
		}
		if c := newClient(t, drv, queue.Config{}); c.IsLeader() {
			t.Error("a client that was never started leads")
		}
	})
}
