package reliability

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

// Environment of a leader-scenario worker process (mode "leader").
const (
	// envLease is the engine's LeaderLease.
	envLease = "ACIDIC_RELIABILITY_LEASE"
	// envSlot numbers the process; its sessions' application_name ends
	// with it.
	envSlot = "ACIDIC_RELIABILITY_SLOT"
)

// leaderAppName is the application_name of the sessions of the leader
// worker in slot.
func leaderAppName(slot int) string { return "acidic-leader-" + strconv.Itoa(slot) }

// leaderWorkerMain is a worker process of TestLeaderAmongEngineProcesses:
// an engine with a short lease that reports, every 10ms, whether it believes
// it leads (beliefs: node_id, pid, leads, seq, at), until SIGTERM or
// SIGKILL.
func leaderWorkerMain() int {
	schema := os.Getenv(envSchema)
	lease, err := time.ParseDuration(os.Getenv(envLease))
	if err != nil {
		fmt.Fprintln(os.Stderr, "lease:", err)
		return 2
	}
	slot, _ := strconv.Atoi(os.Getenv(envSlot))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	parent := os.Getppid()
	go func() {
		for range time.Tick(200 * time.Millisecond) {
			if os.Getppid() != parent {
				os.Exit(3)
			}
		}
	}()
	cfg, err := pgxpool.ParseConfig(os.Getenv(envURL))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.MaxConns = 6
	cfg.ConnConfig.RuntimeParams["application_name"] = leaderAppName(slot)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer pool.Close()
	logger, _ := newQuietLogger(os.Stderr)
	eng, err := workflow.NewEngine(postgres.New(pool, postgres.Options{Schema: schema}), workflow.Config{
		Queue: queue.Config{
			Queues:              map[string]queue.QueueConfig{queue.DefaultQueue: {MaxWorkers: 1}},
			HeartbeatInterval:   50 * time.Millisecond,
			MaintenanceInterval: 50 * time.Millisecond,
			LeaderLease:         lease,
		},
		Logger: logger,
	})
	if err == nil {
		err = eng.Start(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	report := "INSERT INTO " + qualify(schema, "beliefs") + " (node_id, pid, leads, seq) VALUES ($1, $2, $3, 1)" +
		" ON CONFLICT (node_id) DO UPDATE SET leads = excluded.leads, seq = beliefs.seq + 1, at = clock_timestamp()"
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := eng.Stop(stopCtx); err != nil {
				fmt.Fprintln(os.Stderr, "stop:", err)
				return 1
			}
			return 0
		case <-tick.C:
			_, _ = pool.Exec(ctx, report, eng.Queue().ID(), os.Getpid(), eng.IsLeader())
		}
	}
}

// belief is one process's last report.
type belief struct {
	node  string
	pid   int
	leads bool
	seq   int64
}

// TestLeaderAmongEngineProcesses: three engine processes elect exactly one
// leader, the one the leader table names, and keep it while they run. The
// leader is SIGKILLed: another process leads once the dead one's lease has
// run out, never before, and within a lease of that; the dead node's row is
// deleted by the new leader. A clean stop of the rest leaves no leader and
// no node rows behind.
func TestLeaderAmongEngineProcesses(t *testing.T) {
	t.Parallel()
	const lease = 2 * time.Second
	drv := testdb.New(t, testdb.Options{MaxConns: 4})
	pool := drv.Pool()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := pool.Exec(ctx, "CREATE TABLE "+qualify(drv.Schema(), "beliefs")+
		" (node_id text PRIMARY KEY, pid int NOT NULL, leads boolean NOT NULL, seq bigint NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())"); err != nil {
		t.Fatal(err)
	}
	logDir := t.TempDir()
	procs := make([]*exec.Cmd, 3)
	for slot := range procs {
		log, err := os.Create(filepath.Join(logDir, "leader-"+strconv.Itoa(slot)+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envWorker+"=leader", envSchema+"="+drv.Schema(), envURL+"="+testURL(),
			envLease+"="+lease.String(), envSlot+"="+strconv.Itoa(slot))
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		log.Close()
		procs[slot] = cmd
	}
	t.Cleanup(func() {
		for _, p := range procs {
			if p != nil {
				_ = p.Process.Kill()
				_ = p.Wait()
			}
		}
	})
	defer func() {
		if t.Failed() {
			for slot := range procs {
				b, _ := os.ReadFile(filepath.Join(logDir, "leader-"+strconv.Itoa(slot)+".log"))
				t.Logf("process %d log:\n%s", slot, b)
			}
		}
	}()

	beliefs := func() map[int]belief {
		t.Helper()
		rows, err := pool.Query(ctx, "SELECT node_id, pid, leads, seq FROM "+qualify(drv.Schema(), "beliefs"))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[int]belief{}
		for rows.Next() {
			var b belief
			if err := rows.Scan(&b.node, &b.pid, &b.leads, &b.seq); err != nil {
				t.Fatal(err)
			}
			out[b.pid] = b
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	leader := func() *acidic.Leader {
		t.Helper()
		l, err := drv.LeaderGet(ctx, storage.LeaderGetParams{})
		if errors.Is(err, acidic.ErrNotFound) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	// fresh waits until every process in pids has reported again since
	// before, and returns the reports.
	fresh := func(before map[int]belief, pids ...int) map[int]belief {
		t.Helper()
		var now map[int]belief
		ok, _ := waitUntil(30*time.Second, 5*time.Millisecond, func() (bool, string) {
			now = beliefs()
			for _, pid := range pids {
				if b, ok := now[pid]; !ok || b.seq <= before[pid].seq+1 {
					return false, ""
				}
			}
			return true, ""
		})
		if !ok {
			t.Fatalf("processes %v stopped reporting: %+v", pids, now)
		}
		return now
	}
	// sample checks, over reports all made while one lease ran unbroken,
	// that exactly the process the leader table names believes it leads.
	// It returns the leader, or nil when the lead changed during the sample
	// (the sample then proves nothing).
	sample := func(pids ...int) *acidic.Leader {
		t.Helper()
		l := leader()
		if l == nil {
			return nil
		}
		got := fresh(beliefs(), pids...)
		if after := leader(); after == nil || after.NodeID != l.NodeID || !after.ElectedAt.Equal(l.ElectedAt) {
			return nil
		}
		for _, pid := range pids {
			if b := got[pid]; b.leads != (b.node == l.NodeID) {
				t.Fatalf("process %d (node %s) believes it leads: %v; the leader table names %s", pid, b.node, b.leads, l.NodeID)
			}
		}
		return l
	}
	pids := make([]int, len(procs))
	for i, p := range procs {
		pids[i] = p.Process.Pid
	}

	// Exactly one leader among the three, stable while they run.
	if ok, saw := waitUntil(60*time.Second, 5*time.Millisecond, func() (bool, string) {
		l, b := leader(), beliefs()
		return l != nil && len(b) == 3, fmt.Sprintf("leader %+v, %d processes reporting", l, len(b))
	}); !ok {
		t.Fatalf("the processes did not start: %s", saw)
	}
	var first *acidic.Leader
	for valid, tries := 0, 0; valid < 10; tries++ {
		if tries > 100 {
			t.Fatalf("no stable lead in %d samples", tries)
		}
		if l := sample(pids...); l != nil {
			if first != nil && l.NodeID != first.NodeID {
				t.Fatalf("the lead moved from %s to %s while every process ran", first.NodeID, l.NodeID)
			}
			first, valid = l, valid+1
		}
	}
	byNode := map[string]int{}
	for i, pid := range pids {
		byNode[beliefs()[pid].node] = i
	}
	slot, ok := byNode[first.NodeID]
	if !ok || len(byNode) != 3 {
		t.Fatalf("leader %s is none of the processes' nodes %v", first.NodeID, byNode)
	}

	// SIGKILL the leader.
	if err := procs[slot].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = procs[slot].Wait()
	procs[slot] = nil
	var killedAt time.Time
	if err := pool.QueryRow(ctx, "SELECT now()").Scan(&killedAt); err != nil {
		t.Fatal(err)
	}
	// The dead leader's last renewal may still commit until its sessions
	// end; its lease is the one the table then holds.
	if ok, saw := waitUntil(30*time.Second, 10*time.Millisecond, func() (bool, string) {
		n := queryInt(t, pool, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", leaderAppName(slot))
		return n == 0, fmt.Sprintf("%d sessions", n)
	}); !ok {
		t.Fatalf("the killed process's sessions did not end: %s", saw)
	}
	old := leader()
	living := append(append([]int(nil), pids[:slot]...), pids[slot+1:]...)
	var next *acidic.Leader
	if ok, saw := waitUntil(60*time.Second, 5*time.Millisecond, func() (bool, string) {
		next = leader()
		return next != nil && next.NodeID != first.NodeID, fmt.Sprintf("leader %+v", next)
	}); !ok {
		t.Fatalf("no new leader after the kill: %s", saw)
	}
	if old != nil && old.NodeID == first.NodeID && next.ElectedAt.Before(old.ExpiresAt) {
		t.Errorf("new leader elected at %v, before the killed leader's lease ran out at %v", next.ElectedAt, old.ExpiresAt)
	}
	took := next.ElectedAt.Sub(killedAt)
	t.Logf("reliability: scenario=leader-kill lease=%s new_leader_after=%s", lease, took.Round(time.Millisecond))
	// The killed leader renewed its lease at most lease/3 before the kill,
	// so its lease ran out at most a lease after it; the others ask again
	// the moment it does. Half a lease more absorbs a loaded machine.
	if took > lease+lease/2 {
		t.Errorf("new leader elected %s after the kill, want within about the lease (%s)", took, lease)
	}
	if _, ok := byNode[next.NodeID]; !ok {
		t.Fatalf("new leader %s is none of the living processes' nodes", next.NodeID)
	}
	for valid, tries := 0, 0; valid < 5; tries++ {
		if tries > 100 {
			t.Fatalf("no stable lead among the survivors in %d samples", tries)
		}
		if l := sample(living...); l != nil {
			if l.NodeID != next.NodeID {
				t.Fatalf("the lead moved from %s to %s", next.NodeID, l.NodeID)
			}
			valid++
		}
	}
	// The new leader deletes the dead node's row.
	if ok, saw := waitUntil(30*time.Second, 10*time.Millisecond, func() (bool, string) {
		nodes, err := drv.NodeList(ctx, storage.NodeListParams{})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if n.ID == first.NodeID {
				return false, fmt.Sprintf("%d nodes, the dead one's among them", len(nodes))
			}
		}
		return len(nodes) == 2, fmt.Sprintf("%d nodes", len(nodes))
	}); !ok {
		t.Fatalf("the dead node's row stayed: %s", saw)
	}

	// A clean stop of the survivors leaves nothing behind.
	for i, p := range procs {
		if p == nil {
			continue
		}
		_ = p.Process.Signal(syscall.SIGTERM)
		if err := p.Wait(); err != nil {
			t.Errorf("process %d: %v", i, err)
		}
		procs[i] = nil
	}
	if l := leader(); l != nil {
		t.Errorf("after every process stopped: leader %+v, want none", l)
	}
	if nodes, err := drv.NodeList(ctx, storage.NodeListParams{}); err != nil || len(nodes) != 0 {
		t.Errorf("after every process stopped: %d node rows (%v), want none", len(nodes), err)
	}
}
