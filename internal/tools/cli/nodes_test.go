package cli_test

import (
	"context"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/internal/tools/cli"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// TestNodesShowsTheLeader: acidic nodes lists the live nodes (a started
// engine and another node's row) with their host, process, version and
// queues, marks the leader in text and JSON, and counts the rows of dead
// nodes without listing them. With every node stopped, nobody leads.
func TestNodesShowsTheLeader(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{MaxConns: 4}, func(t *testing.T, drv storage.Driver) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a := shell{t: t, ctx: ctx, base: dbFlags(drv)}
		if out := a.text("nodes"); !strings.Contains(out, "leader: none") || !strings.Contains(out, "no live nodes") {
			t.Errorf("nodes before any node started:\n%s", out)
		}

		eng, err := workflow.NewEngine(drv, workflow.Config{Queue: queue.Config{
			Queues:              map[string]queue.QueueConfig{"mail": {MaxWorkers: 4}},
			HeartbeatInterval:   20 * time.Millisecond,
			MaintenanceInterval: 20 * time.Millisecond,
			Logger:              slog.New(slog.DiscardHandler),
		}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.Start(ctx); err != nil {
			t.Fatal(err)
		}
		stopped := false
		stop := func() {
			if !stopped {
				stopped = true
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := eng.Stop(sctx); err != nil {
					t.Errorf("Stop: %v", err)
				}
			}
		}
		defer stop()
		id := eng.Queue().ID()
		// Another live node, which does not lead, and a dead one.
		for _, p := range []storage.NodeRecordParams{
			{ID: "other-node", Hostname: "elsewhere", PID: 7, Version: "0.0.9", TTL: time.Hour,
				Queues: []acidic.NodeQueue{{Queue: "default", MaxWorkers: 2, Busy: 1}}},
			{ID: "dead-node", Version: "0.0.9", TTL: time.Microsecond},
		} {
			if _, err := drv.NodeRecord(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(30 * time.Second)
		for !eng.IsLeader() || !hasNode(t, drv, id) {
			if time.Now().After(deadline) {
				t.Fatal("the engine did not lead and record its row")
			}
			time.Sleep(5 * time.Millisecond)
		}
		// Its maintenance may delete the dead node's row any time now: the
		// checks below allow both.

		var got cli.NodesJSON
		a.json(&got, "nodes")
		if got.Leader == nil || got.Leader.NodeID != id || !got.Leader.ExpiresAt.After(got.Leader.ElectedAt) {
			t.Fatalf("nodes -json: leader %+v, want %s", got.Leader, id)
		}
		if len(got.Nodes) != 2 || got.Expired > 1 {
			t.Fatalf("nodes -json: %d live nodes and %d expired, want 2 and at most 1: %+v", len(got.Nodes), got.Expired, got.Nodes)
		}
		host, _ := os.Hostname()
		byID := map[string]cli.NodeJSON{}
		for _, n := range got.Nodes {
			byID[n.ID] = n
		}
		me, other := byID[id], byID["other-node"]
		if !me.Leader || me.Hostname == nil || *me.Hostname != host || me.PID != os.Getpid() || me.Version != acidic.Version ||
			!reflect.DeepEqual(me.Queues, []cli.NodeQueueJSON{{Queue: "mail", MaxWorkers: 4}}) || me.WorkersBusy != 0 || me.WorkersFree != 4 {
			t.Errorf("nodes -json: the engine's node is %+v", me)
		}
		if other.Leader || other.Hostname == nil || *other.Hostname != "elsewhere" || other.PID != 7 || other.WorkersBusy != 1 || other.WorkersFree != 1 {
			t.Errorf("nodes -json: the other node is %+v", other)
		}

		out := a.text("nodes")
		head, tbl, _ := strings.Cut(out, "\n\n")
		if !strings.HasPrefix(head, "leader: "+id+" (since ") {
			t.Errorf("nodes: first line %q, want the leader %s", head, id)
		}
		tbl, _, _ = strings.Cut(tbl, "\n\n") // the dead nodes' note, if any
		rows := table(t, tbl, "NODE LEADER HOST PID VERSION BUSY FREE QUEUES STARTED HEARTBEAT")
		columns(t, "nodes", tbl)
		marks := map[string][]string{}
		for _, r := range rows {
			marks[r[0]] = r
		}
		if r := marks[id]; len(r) != 10 || r[1] != "*" || r[2] != host || r[3] != strconv.Itoa(os.Getpid()) || r[4] != acidic.Version || r[7] != "mail=0/4" {
			t.Errorf("nodes: the engine's row is %q", r)
		}
		if r := marks["other-node"]; len(r) != 10 || r[1] != "-" || r[7] != "default=1/2" {
			t.Errorf("nodes: the other node's row is %q", r)
		}
		if len(rows) != 2 {
			t.Errorf("nodes: %d rows, want 2 (no dead node)\n%s", len(rows), out)
		}

		stop()
		a.json(&got, "nodes")
		if got.Leader != nil || len(got.Nodes) != 1 || got.Nodes[0].ID != "other-node" {
			t.Errorf("nodes -json after the engine stopped: leader %+v, nodes %+v; want no leader and the other node", got.Leader, got.Nodes)
		}
	})
}

func hasNode(t *testing.T, drv storage.Driver, id string) bool {
	t.Helper()
	nodes, err := drv.NodeList(context.Background(), storage.NodeListParams{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.ID == id {
			return true
		}
	}
	return false
}
