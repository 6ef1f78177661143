package reliability

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acidic-go/acidic/internal/testkit/testdb"
)

// workerSet runs worker processes (this test binary, see TestMain) and kills
// and restarts them.
type workerSet struct {
	t       *testing.T
	schema  string
	url     string
	workers int
	sleep   time.Duration
	logDir  string

	mu       sync.Mutex
	procs    []*exec.Cmd
	kills    int
	restarts int
}

func (ws *workerSet) start(slot int) *exec.Cmd {
	ws.t.Helper()
	log, err := os.OpenFile(filepath.Join(ws.logDir, "worker-"+strconv.Itoa(slot)+".log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		ws.t.Errorf("worker log: %v", err)
		return nil
	}
	defer log.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		envWorker+"=chaos",
		envSchema+"="+ws.schema,
		envWorkers+"="+strconv.Itoa(ws.workers),
		envURL+"="+ws.url,
		envSleep+"="+ws.sleep.String(),
	)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		ws.t.Errorf("start worker process: %v", err)
		return nil
	}
	return cmd
}

// kill SIGKILLs the worker in slot and starts a new one in its place.
func (ws *workerSet) killAndRestart(slot int) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if p := ws.procs[slot]; p != nil {
		_ = p.Process.Signal(syscall.SIGKILL)
		_ = p.Wait()
		ws.kills++
	}
	ws.procs[slot] = ws.start(slot)
	ws.restarts++
}

// stop ends every worker: SIGTERM, then SIGKILL after a grace period.
func (ws *workerSet) stop() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, p := range ws.procs {
		if p != nil {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
	}
	for i, p := range ws.procs {
		if p == nil {
			continue
		}
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
		ws.procs[i] = nil
	}
}

func (ws *workerSet) dumpLogs() {
	for i := range ws.procs {
		b, err := os.ReadFile(filepath.Join(ws.logDir, "worker-"+strconv.Itoa(i)+".log"))
		if err != nil || len(b) == 0 {
			continue
		}
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		ws.t.Logf("worker slot %d log (tail):\n%s", i, b)
	}
}

// TestWorkerCrashes: three worker processes work N chaos runs (a plain step,
// a for-each over 10 items, an await of 2 child runs, a final step) while a
// supervisor SIGKILLs a random worker every 200-500ms and starts a new one.
// Orphaned jobs are rescued after 500ms; every run must succeed, with each
// effect exactly once.
func TestWorkerCrashes(t *testing.T) {
	started := time.Now()
	n := pick(60, 300)
	drv := testdb.New(t, testdb.Options{MaxConns: 6})
	pool := drv.Pool()
	createScenarioTables(t, pool, drv.Schema())

	// The test process only enqueues; the workers execute.
	ef := &effector{schema: drv.Schema(), side: pool, actor: "test"}
	ids := enqueueChaos(t, drv, ef, n)

	ws := &workerSet{t: t, schema: drv.Schema(), url: testURL(), workers: 2, sleep: 60 * time.Millisecond, logDir: t.TempDir(), procs: make([]*exec.Cmd, 3)}
	for i := range ws.procs {
		ws.procs[i] = ws.start(i)
	}
	t.Cleanup(ws.stop)

	done := make(chan struct{})
	var supervisor sync.WaitGroup
	supervisor.Add(1)
	go func() {
		defer supervisor.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Duration(200+rand.IntN(301)) * time.Millisecond):
			}
			ws.killAndRestart(rand.IntN(len(ws.procs)))
		}
	}()

	ok, saw := waitChaos(t, pool, drv.Schema(), n, stallTimeout(), pick(3*time.Minute, 10*time.Minute))
	close(done)
	supervisor.Wait()
	ws.stop()
	if !ok {
		ws.dumpLogs()
		t.Errorf("did not finish: %s; unfinished runs:%s", saw, describeStuck(t, pool, drv.Schema()))
	}

	dups, lost := verifyChaos(t, pool, drv.Schema(), ids)
	if t.Failed() {
		ws.dumpLogs()
	}
	ws.mu.Lock()
	kills, restarts := ws.kills, ws.restarts
	ws.mu.Unlock()
	if kills == 0 {
		t.Errorf("no worker was killed: the scenario finished before the first kill")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var retries int64
	if err := pool.QueryRow(ctx, "SELECT coalesce(sum(tx_retries), 0) FROM "+qualify(drv.Schema(), "worker_stats")).Scan(&retries); err != nil {
		t.Error(err)
	}
	interrupted := queryInt(t, pool, "SELECT count(*) FROM "+qualify(drv.Schema(), "executions")+" WHERE finished_at IS NULL")
	executions := queryInt(t, pool, "SELECT count(*) FROM "+qualify(drv.Schema(), "executions"))
	t.Logf("reliability: scenario=worker-crashes step_executions=%d interrupted_by_kill=%d", executions, interrupted)
	report(t, counts{scenario: "worker-crashes", runs: n, kills: kills, restarts: restarts, txRetries: retries, duplicates: dups, lost: lost}, started)
}
