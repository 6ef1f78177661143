package cli

import (
	"errors"
	"flag"
	"strconv"
	"strings"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// NodesJSON is the output of nodes: the leader and the live nodes.
type NodesJSON struct {
	Leader *LeaderJSON `json:"leader"`
	Nodes  []NodeJSON  `json:"nodes"`
	// Expired counts the rows of nodes that stopped heartbeating, which the
	// leader has not deleted yet; they are not in Nodes.
	Expired int `json:"expired"`
}

// LeaderJSON is the node that leads, with its lease.
type LeaderJSON struct {
	NodeID    string    `json:"node_id"`
	ElectedAt time.Time `json:"elected_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// NodeJSON is one live node.
type NodeJSON struct {
	ID          string          `json:"id"`
	Leader      bool            `json:"leader"`
	Hostname    *string         `json:"hostname"`
	PID         int             `json:"pid"`
	Version     string          `json:"version"`
	Queues      []NodeQueueJSON `json:"queues"`
	WorkersBusy int             `json:"workers_busy"`
	WorkersFree int             `json:"workers_free"`
	StartedAt   time.Time       `json:"started_at"`
	HeartbeatAt time.Time       `json:"heartbeat_at"`
}

// NodeQueueJSON is one queue a node works.
type NodeQueueJSON struct {
	Queue      string `json:"queue"`
	MaxWorkers int    `json:"max_workers"`
	Busy       int    `json:"busy"`
}

func setupNodes(e *env, _ *flag.FlagSet) func([]string) (func() error, error) {
	return func(args []string) (func() error, error) {
		if err := wantArgs("nodes", args); err != nil {
			return nil, err
		}
		return func() error {
			leader, err := e.drv.LeaderGet(e.ctx, storage.LeaderGetParams{})
			if errors.Is(err, acidic.ErrNotFound) {
				leader, err = nil, nil
			}
			if err != nil {
				return err
			}
			if leader != nil && leader.ExpiresIn <= 0 {
				leader = nil // its holder died; nobody leads until another node takes over
			}
			nodes, err := e.drv.NodeList(e.ctx, storage.NodeListParams{})
			if err != nil {
				return err
			}
			out := nodesJSON(leader, nodes)
			return e.printer().emit(out, func(t *textOut) { printNodes(t, out, e.place()) })
		}, nil
	}
}

func nodesJSON(leader *acidic.Leader, nodes []*acidic.Node) NodesJSON {
	out := NodesJSON{Nodes: []NodeJSON{}}
	if leader != nil {
		out.Leader = &LeaderJSON{NodeID: leader.NodeID, ElectedAt: leader.ElectedAt, ExpiresAt: leader.ExpiresAt}
	}
	for _, n := range nodes {
		if !n.Live() {
			out.Expired++
			continue
		}
		queues := make([]NodeQueueJSON, len(n.Queues))
		for i, q := range n.Queues {
			queues[i] = NodeQueueJSON(q)
		}
		out.Nodes = append(out.Nodes, NodeJSON{
			ID: n.ID, Leader: leader != nil && leader.NodeID == n.ID, Hostname: nullString(n.Hostname), PID: n.PID,
			Version: n.Version, Queues: queues, WorkersBusy: n.WorkersBusy(), WorkersFree: n.WorkersFree(),
			StartedAt: n.StartedAt, HeartbeatAt: n.HeartbeatAt,
		})
	}
	return out
}

// printNodes writes the nodes as a table, the leader marked with a "*".
func printNodes(t *textOut, out NodesJSON, place string) {
	switch {
	case out.Leader == nil:
		t.line("leader: none")
	default:
		t.linef("leader: %s (since %s, lease until %s)", out.Leader.NodeID,
			out.Leader.ElectedAt.Format(time.RFC3339), out.Leader.ExpiresAt.Format(time.RFC3339))
	}
	if len(out.Nodes) == 0 {
		t.linef("no live nodes in %s", place)
	} else {
		t.blank()
		tb := t.table("NODE", "LEADER", "HOST", "PID", "VERSION", "BUSY", "FREE", "QUEUES", "STARTED", "HEARTBEAT")
		for _, n := range out.Nodes {
			mark := "-"
			if n.Leader {
				mark = "*"
			}
			host := "-"
			if n.Hostname != nil {
				host = *n.Hostname
			}
			queues := make([]string, len(n.Queues))
			for i, q := range n.Queues {
				queues[i] = q.Queue + "=" + strconv.Itoa(q.Busy) + "/" + strconv.Itoa(q.MaxWorkers)
			}
			tb.row(n.ID, mark, host, strconv.Itoa(n.PID), n.Version, strconv.Itoa(n.WorkersBusy), strconv.Itoa(n.WorkersFree),
				orDash(strings.Join(queues, ",")), n.StartedAt.Format(time.RFC3339), n.HeartbeatAt.Format(time.RFC3339))
		}
		tb.flush()
	}
	if out.Expired > 0 {
		t.blank()
		t.linef("%d node(s) stopped heartbeating; the leader deletes their rows", out.Expired)
	}
}
