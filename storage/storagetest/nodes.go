package storagetest

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

var nodeTests = []conformanceTest{
	{"LeaderElect", testLeaderElect},
	{"LeaderElectTakesOverExpiredLease", testLeaderElectTakesOverExpiredLease},
	{"LeaderElectConcurrent", testLeaderElectConcurrent},
	{"NodeRecord", testNodeRecord},
	{"NodePrune", testNodePrune},
	{"NodeWritesRefuseInvalidValues", testNodeWritesRefuseInvalidValues},
}

// eventually polls cond until it holds, failing the test after a generous
// wait: it waits for leases to run out, never asserts how fast.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func elect(t *testing.T, drv storage.Driver, node string, ttl time.Duration) *acidic.Leader {
	t.Helper()
	l, err := drv.LeaderElect(testCtx(t), storage.LeaderElectParams{NodeID: node, TTL: ttl})
	if err != nil {
		t.Fatalf("LeaderElect(%s): %v", node, err)
	}
	if l == nil {
		t.Fatalf("LeaderElect(%s) read no leader without a concurrent change", node)
	}
	return l
}

func resign(t *testing.T, drv storage.Driver, node string) bool {
	t.Helper()
	ok, err := drv.LeaderResign(testCtx(t), storage.LeaderResignParams{NodeID: node})
	if err != nil {
		t.Fatalf("LeaderResign(%s): %v", node, err)
	}
	return ok
}

// leader returns the leader, nil when nobody leads.
func leader(t *testing.T, drv storage.Driver) *acidic.Leader {
	t.Helper()
	l, err := drv.LeaderGet(testCtx(t), storage.LeaderGetParams{})
	if errors.Is(err, acidic.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("LeaderGet: %v", err)
	}
	return l
}

// wantLease checks that l is node's lead with a lease of about ttl left.
func wantLease(t *testing.T, what string, l *acidic.Leader, node string, ttl time.Duration) {
	t.Helper()
	if l == nil || l.NodeID != node {
		t.Fatalf("%s: leader %+v, want %s", what, l, node)
	}
	if l.ExpiresIn <= ttl-time.Minute || l.ExpiresIn > ttl {
		t.Errorf("%s: %s left on the lease, want about %s", what, l.ExpiresIn, ttl)
	}
	if !l.ExpiresAt.After(l.ElectedAt) {
		t.Errorf("%s: lease expires at %v, not after the election at %v", what, l.ExpiresAt, l.ElectedAt)
	}
}

// testLeaderElect: the first node to ask leads; another node's attempt
// changes nothing while the lease runs; the leader's renewal extends its
// lease and keeps its election time; only the leader can resign, and its
// resignation wakes the other nodes, after which another node leads.
func testLeaderElect(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	if l := leader(t, drv); l != nil {
		t.Fatalf("fresh store: leader %+v, want none", l)
	}
	a := elect(t, drv, "node-a", time.Hour)
	wantLease(t, "a's election", a, "node-a", time.Hour)
	if got := leader(t, drv); !reflect.DeepEqual(stripLeft(got), stripLeft(a)) {
		t.Errorf("LeaderGet = %+v, want %+v", got, a)
	}

	b := elect(t, drv, "node-b", time.Hour)
	wantLease(t, "b's attempt while a leads", b, "node-a", time.Hour)
	if !b.ElectedAt.Equal(a.ElectedAt) || !b.ExpiresAt.Equal(a.ExpiresAt) {
		t.Errorf("b's attempt changed a's lease: %+v, was %+v", b, a)
	}

	renewed := elect(t, drv, "node-a", 2*time.Hour)
	wantLease(t, "a's renewal", renewed, "node-a", 2*time.Hour)
	if !renewed.ElectedAt.Equal(a.ElectedAt) {
		t.Errorf("renewal moved the election time from %v to %v", a.ElectedAt, renewed.ElectedAt)
	}
	if !renewed.ExpiresAt.After(a.ExpiresAt) {
		t.Errorf("renewal left the lease at %v (was %v)", renewed.ExpiresAt, a.ExpiresAt)
	}

	l := newListener(ctx, t, drv, storage.TopicLeader)
	if resign(t, drv, "node-b") {
		t.Error("b resigned a lead it does not hold")
	}
	if got := leader(t, drv); got == nil || got.NodeID != "node-a" {
		t.Fatalf("after b's resignation: leader %+v, want node-a", got)
	}
	if !resign(t, drv, "node-a") {
		t.Fatal("a's resignation: not leading")
	}
	if n := waitOne(ctx, t, l); n.Topic != storage.TopicLeader || n.Payload != "" {
		t.Errorf("resignation notification %+v, want an empty one on %s", n, storage.TopicLeader)
	}
	if got := leader(t, drv); got != nil {
		t.Fatalf("after a's resignation: leader %+v, want none", got)
	}
	if resign(t, drv, "node-a") {
		t.Error("a resigned twice")
	}
	waitNone(ctx, t, l, 200*time.Millisecond)

	b = elect(t, drv, "node-b", time.Hour)
	wantLease(t, "b's election after a resigned", b, "node-b", time.Hour)
	if b.ElectedAt.Before(renewed.ElectedAt) {
		t.Errorf("b elected at %v, before a (%v)", b.ElectedAt, renewed.ElectedAt)
	}
}

// stripLeft drops the time left on a lease, which changes between reads.
func stripLeft(l *acidic.Leader) *acidic.Leader {
	if l == nil {
		return nil
	}
	c := *l
	c.ExpiresIn = 0
	return &c
}

// testLeaderElectTakesOverExpiredLease: once the leader's lease has run out
// (by the store's clock), another node takes the lead with a new election
// time; the old leader's attempt then changes nothing. A leader whose own
// lease ran out before anyone else asked renews it and keeps its election
// time.
func testLeaderElectTakesOverExpiredLease(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	drv := newDriver(t)
	a := elect(t, drv, "node-a", time.Millisecond)
	if a.NodeID != "node-a" {
		t.Fatalf("leader %+v, want node-a", a)
	}
	eventually(t, "a's lease to run out", func() bool { return leader(t, drv).ExpiresIn <= 0 })
	if got := leader(t, drv); got.NodeID != "node-a" {
		t.Fatalf("an expired lease is kept until taken over: leader %+v", got)
	}

	b := elect(t, drv, "node-b", time.Millisecond)
	if b.NodeID != "node-b" || !b.ElectedAt.After(a.ElectedAt) {
		t.Fatalf("b's attempt after a's lease ran out: %+v, want b leading, elected after %v", b, a.ElectedAt)
	}
	eventually(t, "b's lease to run out", func() bool { return leader(t, drv).ExpiresIn <= 0 })
	renewed := elect(t, drv, "node-b", time.Hour)
	wantLease(t, "b renewing its lapsed lease", renewed, "node-b", time.Hour)
	if !renewed.ElectedAt.Equal(b.ElectedAt) {
		t.Errorf("b's renewal moved its election time from %v to %v", b.ElectedAt, renewed.ElectedAt)
	}
	if got := elect(t, drv, "node-a", time.Hour); got.NodeID != "node-b" {
		t.Errorf("a's attempt during b's lease: leader %+v, want node-b", got)
	}
}

// testLeaderElectConcurrent: nodes asking at once on an empty store elect
// exactly one of them, and every answer that names a leader names that one.
func testLeaderElectConcurrent(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	const n = 8
	var wg sync.WaitGroup
	results := make([]*acidic.Leader, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = drv.LeaderElect(ctx, storage.LeaderElectParams{NodeID: fmt.Sprintf("node-%d", i), TTL: time.Hour})
		})
	}
	close(start)
	wg.Wait()
	won := map[string]bool{}
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("node-%d: %v", i, errs[i])
		}
		if r == nil {
			continue // the lead changed hands during its attempt
		}
		won[r.NodeID] = true
	}
	final := leader(t, drv)
	if final == nil || len(won) != 1 || !won[final.NodeID] {
		t.Fatalf("answers named leaders %v, the store %+v; want one and the same", won, final)
	}
	if !strings.HasPrefix(final.NodeID, "node-") {
		t.Fatalf("leader %q", final.NodeID)
	}
}

func recordNode(t *testing.T, drv storage.Driver, p storage.NodeRecordParams) *acidic.Node {
	t.Helper()
	n, err := drv.NodeRecord(testCtx(t), p)
	if err != nil {
		t.Fatalf("NodeRecord(%s): %v", p.ID, err)
	}
	return n
}

func listNodes(t *testing.T, drv storage.Driver) []*acidic.Node {
	t.Helper()
	nodes, err := drv.NodeList(testCtx(t), storage.NodeListParams{})
	if err != nil {
		t.Fatalf("NodeList: %v", err)
	}
	return nodes
}

func nodeIDs(nodes []*acidic.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID
	}
	return out
}

// sameNode compares two reads of a node, but for the time left on it.
func sameNode(a, b *acidic.Node) bool {
	x, y := *a, *b
	x.ExpiresIn, y.ExpiresIn = 0, 0
	return reflect.DeepEqual(&x, &y)
}

// testNodeRecord: a node's first record sets its start time; later records
// replace the row but keep the start time given back, move the heartbeat
// and the expiry; every field reads back as written; a node's delete
// removes its row only.
func testNodeRecord(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	drv := newDriver(t)
	p := storage.NodeRecordParams{
		ID: "host-1-abc", Hostname: "höst.example", PID: 4242, Version: "1.2.3",
		Queues: []acidic.NodeQueue{{Queue: "default", MaxWorkers: 10, Busy: 3}, {Queue: "mail", MaxWorkers: 2}},
		TTL:    time.Hour,
	}
	first := recordNode(t, drv, p)
	want := acidic.Node{ID: p.ID, Hostname: p.Hostname, PID: p.PID, Version: p.Version, Queues: p.Queues,
		StartedAt: first.StartedAt, HeartbeatAt: first.HeartbeatAt, ExpiresAt: first.ExpiresAt, ExpiresIn: first.ExpiresIn}
	if !reflect.DeepEqual(first, &want) {
		t.Errorf("first record:\n got %+v\nwant %+v", first, &want)
	}
	if !first.StartedAt.Equal(first.HeartbeatAt) || !first.Live() {
		t.Errorf("first record: started %v, heartbeat %v, live %v; want started at the heartbeat, live", first.StartedAt, first.HeartbeatAt, first.Live())
	}
	if first.ExpiresIn <= 59*time.Minute || first.ExpiresIn > time.Hour || !near(first.ExpiresAt, first.HeartbeatAt.Add(time.Hour), 0) {
		t.Errorf("first record: expires at %v (in %s), heartbeat at %v; want an hour after the heartbeat", first.ExpiresAt, first.ExpiresIn, first.HeartbeatAt)
	}
	if first.WorkersBusy() != 3 || first.WorkersFree() != 9 {
		t.Errorf("busy %d, free %d; want 3 and 9", first.WorkersBusy(), first.WorkersFree())
	}

	p.StartedAt = first.StartedAt
	p.PID, p.Version = 4243, "1.2.4"
	p.Queues = []acidic.NodeQueue{{Queue: "default", MaxWorkers: 10, Busy: 10}}
	p.TTL = 2 * time.Hour
	again := recordNode(t, drv, p)
	if !again.StartedAt.Equal(first.StartedAt) || again.HeartbeatAt.Before(first.HeartbeatAt) || !again.ExpiresAt.After(first.ExpiresAt) {
		t.Errorf("second record: started %v, heartbeat %v, expires %v; want started %v, the heartbeat and expiry moved on from %v, %v",
			again.StartedAt, again.HeartbeatAt, again.ExpiresAt, first.StartedAt, first.HeartbeatAt, first.ExpiresAt)
	}
	if again.PID != 4243 || again.Version != "1.2.4" || !reflect.DeepEqual(again.Queues, p.Queues) || again.WorkersFree() != 0 {
		t.Errorf("second record did not replace the row: %+v", again)
	}

	other := recordNode(t, drv, storage.NodeRecordParams{ID: "host-2-def", PID: 1, Version: "1.2.4", TTL: time.Hour})
	if other.Hostname != "" || other.Queues == nil || len(other.Queues) != 0 {
		t.Errorf("a node with no hostname and no queues reads back as %+v; want \"\" and an empty list", other)
	}
	nodes := listNodes(t, drv)
	if len(nodes) != 2 || !sameNode(nodes[0], again) || !sameNode(nodes[1], other) {
		t.Fatalf("NodeList = %v, want [%s %s] as recorded", nodeIDs(nodes), again.ID, other.ID)
	}

	ctx := testCtx(t)
	if ok, err := drv.NodeDelete(ctx, storage.NodeDeleteParams{ID: p.ID}); err != nil || !ok {
		t.Fatalf("NodeDelete(%s) = %v, %v; want true", p.ID, ok, err)
	}
	if ok, err := drv.NodeDelete(ctx, storage.NodeDeleteParams{ID: p.ID}); err != nil || ok {
		t.Fatalf("NodeDelete(%s) again = %v, %v; want false", p.ID, ok, err)
	}
	if got := nodeIDs(listNodes(t, drv)); !reflect.DeepEqual(got, []string{other.ID}) {
		t.Fatalf("after the delete: nodes %v, want [%s]", got, other.ID)
	}
	// A node whose row was deleted meanwhile (pruned while it paused)
	// records it again, with its start time.
	back := recordNode(t, drv, p)
	if !back.StartedAt.Equal(first.StartedAt) {
		t.Errorf("recorded again after a delete: started %v, want %v", back.StartedAt, first.StartedAt)
	}
}

// testNodePrune: rows of nodes that stopped heartbeating are deleted, at
// most Limit per call; live nodes' rows stay.
func testNodePrune(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	recordNode(t, drv, storage.NodeRecordParams{ID: "live", Version: "v", TTL: time.Hour})
	recordNode(t, drv, storage.NodeRecordParams{ID: "dead-1", Version: "v", TTL: time.Microsecond})
	recordNode(t, drv, storage.NodeRecordParams{ID: "dead-2", Version: "v", TTL: time.Microsecond})
	eventually(t, "the dead nodes' rows to expire", func() bool {
		dead := 0
		for _, n := range listNodes(t, drv) {
			if !n.Live() {
				dead++
			}
		}
		return dead == 2
	})
	for i, want := range []struct{ limit, pruned, left int }{{1, 1, 2}, {10, 1, 1}, {10, 0, 1}} {
		n, err := drv.NodePrune(ctx, storage.NodePruneParams{Limit: want.limit})
		if err != nil {
			t.Fatalf("NodePrune #%d: %v", i+1, err)
		}
		if left := listNodes(t, drv); n != want.pruned || len(left) != want.left {
			t.Fatalf("NodePrune #%d (limit %d) deleted %d, left %v; want %d deleted, %d left", i+1, want.limit, n, nodeIDs(left), want.pruned, want.left)
		}
	}
	if got := nodeIDs(listNodes(t, drv)); !reflect.DeepEqual(got, []string{"live"}) {
		t.Fatalf("after pruning: %v, want [live]", got)
	}
}

// testNodeWritesRefuseInvalidValues: bad arguments are acidic.ErrInvalid and
// write nothing.
func testNodeWritesRefuseInvalidValues(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	for _, p := range []storage.LeaderElectParams{
		{NodeID: "", TTL: time.Hour},
		{NodeID: "bad\nname", TTL: time.Hour},
		{NodeID: strings.Repeat("n", storage.MaxNameBytes+1), TTL: time.Hour},
		{NodeID: "n", TTL: 0},
		{NodeID: "n", TTL: -time.Second},
		{NodeID: "n", TTL: time.Nanosecond},
	} {
		if _, err := drv.LeaderElect(ctx, p); !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("LeaderElect(%q, %s) = %v, want acidic.ErrInvalid", p.NodeID, p.TTL, err)
		}
	}
	if l := leader(t, drv); l != nil {
		t.Errorf("refused elections wrote a leader: %+v", l)
	}

	good := storage.NodeRecordParams{ID: "n", Hostname: "h", PID: 1, Version: "v", TTL: time.Hour,
		Queues: []acidic.NodeQueue{{Queue: "q", MaxWorkers: 1}}}
	for name, change := range map[string]func(p *storage.NodeRecordParams){
		"empty ID":            func(p *storage.NodeRecordParams) { p.ID = "" },
		"ID with a tab":       func(p *storage.NodeRecordParams) { p.ID = "a\tb" },
		"hostname with NUL":   func(p *storage.NodeRecordParams) { p.Hostname = "h\x00" },
		"long hostname":       func(p *storage.NodeRecordParams) { p.Hostname = strings.Repeat("h", storage.MaxNameBytes+1) },
		"hostname not UTF-8":  func(p *storage.NodeRecordParams) { p.Hostname = "h\xff" },
		"empty version":       func(p *storage.NodeRecordParams) { p.Version = "" },
		"negative PID":        func(p *storage.NodeRecordParams) { p.PID = -1 },
		"PID past int32":      func(p *storage.NodeRecordParams) { p.PID = math.MaxInt32 + 1 },
		"TTL of zero":         func(p *storage.NodeRecordParams) { p.TTL = 0 },
		"start in year 10000": func(p *storage.NodeRecordParams) { p.StartedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"queue with no name":  func(p *storage.NodeRecordParams) { p.Queues = []acidic.NodeQueue{{MaxWorkers: 1}} },
		"queue listed twice":  func(p *storage.NodeRecordParams) { p.Queues = append(p.Queues, p.Queues[0]) },
		"negative busy": func(p *storage.NodeRecordParams) {
			p.Queues = []acidic.NodeQueue{{Queue: "q", MaxWorkers: 1, Busy: -1}}
		},
		"negative max workers": func(p *storage.NodeRecordParams) { p.Queues = []acidic.NodeQueue{{Queue: "q", MaxWorkers: -1}} },
	} {
		p := good
		p.Queues = append([]acidic.NodeQueue(nil), good.Queues...)
		change(&p)
		if _, err := drv.NodeRecord(ctx, p); !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("NodeRecord with %s = %v, want acidic.ErrInvalid", name, err)
		}
	}
	if nodes := listNodes(t, drv); len(nodes) != 0 {
		t.Errorf("refused records wrote nodes: %v", nodeIDs(nodes))
	}
	if _, err := drv.NodePrune(ctx, storage.NodePruneParams{Limit: 0}); !errors.Is(err, acidic.ErrInvalid) {
		t.Errorf("NodePrune with limit 0 = %v, want acidic.ErrInvalid", err)
	}
	recordNode(t, drv, good) // the good row is fine
}
