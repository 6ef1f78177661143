package sqlite_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/sqlite"
)

// Environment of a worker process (TestMain).
const (
	envWorker  = "ACIDIC_SQLITE_WORKER" // the file the worker works on
	uniqueKeys = 40
)

// TestMain doubles as a worker process: TestMultiProcess starts this test
// binary again with ACIDIC_SQLITE_WORKER set to the file to work on.
func TestMain(m *testing.M) {
	if path := os.Getenv(envWorker); path != "" {
		if err := workerProcess(path); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// workerProcess waits for "go" on its standard input, then claims jobs of
// queue q until none is left, completing each, and between claims enqueues
// the unique jobs u0..u39. It prints what it did, a line each:
// "claim JOB", "lease RUN JOB", "unique KEY JOB new|dup".
func workerProcess(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	drv, err := sqlite.Open(ctx, path, sqlite.Options{BusyTimeout: time.Minute})
	if err != nil {
		return err
	}
	defer drv.Close()
	if line, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil || line != "go\n" {
		return fmt.Errorf("start signal: %q, %v", line, err)
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	worker := "pid" + strconv.Itoa(os.Getpid())
	key := 0
	for {
		jobs, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 3, WorkerID: worker})
		if err != nil {
			return err
		}
		var done []storage.JobAttempt
		for _, j := range jobs {
			fmt.Fprintf(out, "claim %d\n", j.ID)
			if j.LeasedRun != nil {
				fmt.Fprintf(out, "lease %s %d\n", j.LeasedRun.ID, j.ID)
			}
			done = append(done, storage.JobAttempt{ID: j.ID, Attempt: j.Attempt})
		}
		if len(done) > 0 {
			if _, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: done}); err != nil {
				return err
			}
		}
		if key < uniqueKeys {
			in := storage.JobInsert{Queue: "uq", Kind: "k", Args: json.RawMessage(`{}`), State: acidic.JobAvailable, MaxAttempts: 1,
				UniqueKey: []byte("u" + strconv.Itoa(key)), UniqueStates: acidic.NewJobStates(acidic.JobAvailable, acidic.JobRunning)}
			j, err := drv.JobInsertUnique(ctx, storage.JobInsertUniqueParams{Job: in})
			if err != nil {
				return err
			}
			verdict := "new"
			if j.Duplicate {
				verdict = "dup"
			}
			fmt.Fprintf(out, "unique %d %d %s\n", key, j.ID, verdict)
			key++
		}
		if len(jobs) == 0 && key == uniqueKeys {
			return nil
		}
	}
}

// TestMultiProcess: two processes working one file at the same time claim
// every job exactly once, lease each run to one attempt, and make one job
// per unique key: SQLite's file lock serializes their write transactions
// (BEGIN IMMEDIATE), which is what lets the driver declare MultiProcess.
func TestMultiProcess(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "shared.db")
	drv := openFile(t, path, sqlite.Options{Migrate: true})
	if !drv.Capabilities().MultiProcess {
		t.Fatal("the driver does not declare MultiProcess")
	}
	const plain, runs = 300, 40
	var in []storage.JobInsert
	for range plain {
		in = append(in, storage.JobInsert{Queue: "q", Kind: "k", Args: json.RawMessage(`{}`), State: acidic.JobAvailable, MaxAttempts: 1})
	}
	for i := range runs {
		r, _, err := drv.RunInsert(ctx, storage.RunInsertParams{ID: newID(), IdempotencyKey: "run" + strconv.Itoa(i), Workflow: "wf",
			Args: json.RawMessage(`{}`), Queue: "q", RecoveryPoint: "s1", DefinitionHash: "h"})
		if err != nil {
			t.Fatal(err)
		}
		// Two jobs of the run's kind: both claimed, one lease.
		for range 2 {
			in = append(in, storage.JobInsert{Queue: "q", Kind: "wf", Args: json.RawMessage(`{}`), RunID: r.ID,
				State: acidic.JobAvailable, MaxAttempts: 1})
		}
	}
	if _, err := drv.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: in}); err != nil {
		t.Fatal(err)
	}

	const workers = 2
	outputs := make([]string, workers)
	var wg sync.WaitGroup
	starts := make([]func(), workers)
	for w := range workers {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envWorker+"="+path)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		starts[w] = func() { _, _ = stdin.Write([]byte("go\n")) }
		wg.Go(func() {
			if err := cmd.Wait(); err != nil {
				t.Errorf("worker %d: %v\n%s", w, err, stderr.String())
			}
			outputs[w] = stdout.String()
		})
	}
	for _, start := range starts {
		start()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	claims := map[int64]int{}
	leases := map[string][]string{}
	uniques := map[string]map[string]int{} // key: job id: new count
	perWorker := make([]int, workers)
	for w, out := range outputs {
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			switch f[0] {
			case "claim":
				id, _ := strconv.ParseInt(f[1], 10, 64)
				claims[id]++
				perWorker[w]++
			case "lease":
				leases[f[1]] = append(leases[f[1]], f[2])
			case "unique":
				if uniques[f[1]] == nil {
					uniques[f[1]] = map[string]int{}
				}
				if f[3] == "new" {
					uniques[f[1]][f[2]]++
				} else {
					uniques[f[1]][f[2]] += 0
				}
			}
		}
	}
	if len(claims) != plain+2*runs {
		t.Errorf("%d jobs claimed, want %d", len(claims), plain+2*runs)
	}
	for id, n := range claims {
		if n != 1 {
			t.Errorf("job %d claimed %d times", id, n)
		}
	}
	if len(leases) != runs {
		t.Errorf("%d runs leased by a fetch, want all %d", len(leases), runs)
	}
	for run, by := range leases {
		if len(by) != 1 {
			t.Errorf("run %s leased by %d fetches: jobs %v", run, len(by), by)
		}
	}
	if len(uniques) != uniqueKeys {
		t.Errorf("%d unique keys reported, want %d", len(uniques), uniqueKeys)
	}
	for key, ids := range uniques {
		news := 0
		for _, n := range ids {
			news += n
		}
		if len(ids) != 1 || news != 1 {
			t.Errorf("unique key u%s: jobs %v (id: times created), want one job created once", key, ids)
		}
	}
	if jobs, err := drv.JobList(ctx, acidic.JobFilter{Queue: "uq"}); err != nil || len(jobs) != uniqueKeys {
		t.Errorf("%d unique jobs stored (%v), want %d", len(jobs), err, uniqueKeys)
	}
	t.Logf("claims per worker: %v", perWorker)
}
