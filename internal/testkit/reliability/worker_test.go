package reliability

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

// crashEngineConfig is the engine config of a crash-scenario worker: short
// heartbeats, rescue, maintenance and lead, so the jobs of a killed worker
// are rescued within about half a second (a second when the killed worker
// led).
func crashEngineConfig(workers int) workflow.Config {
	return workflow.Config{
		Queue: queue.Config{
			Queues:              map[string]queue.QueueConfig{queue.DefaultQueue: {MaxWorkers: workers}},
			PollInterval:        50 * time.Millisecond,
			HeartbeatInterval:   50 * time.Millisecond,
			RescueAfter:         500 * time.Millisecond,
			MaintenanceInterval: 100 * time.Millisecond,
			LeaderLease:         500 * time.Millisecond, // a killed leader is replaced soon
		},
		LockedRetry: 50 * time.Millisecond,
	}
}

// workerMain is a worker process: it works the chaos workflow on the schema
// named by the environment until SIGTERM, SIGKILL or its parent's death,
// and reports its serialization retries in worker_stats every 100ms.
func workerMain(mode string) int {
	if mode == "leader" {
		return leaderWorkerMain()
	}
	if mode != "chaos" {
		fmt.Fprintf(os.Stderr, "reliability worker: unknown mode %q\n", mode)
		return 2
	}
	schema := os.Getenv(envSchema)
	workers, _ := strconv.Atoi(os.Getenv(envWorkers))
	if workers < 1 {
		workers = 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	// Die with the test: a test binary killed by a timeout leaves no workers.
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
	cfg.MaxConns = int32(2*workers + 4)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer pool.Close()
	actor := "pid-" + strconv.Itoa(os.Getpid())
	drv := postgres.New(pool, postgres.Options{Schema: schema})
	sleep, _ := time.ParseDuration(os.Getenv(envSleep))
	ef := &effector{schema: schema, side: pool, actor: actor, sleep: sleep}
	logger, _ := newQuietLogger(os.Stderr)
	ecfg := crashEngineConfig(workers)
	ecfg.Logger = logger
	eng, err := workflow.NewEngine(drv, ecfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := eng.Register(chaosWorkflows(ef)...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := eng.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stats := "INSERT INTO " + qualify(schema, "worker_stats") + " (actor, tx_retries) VALUES ($1, $2)" +
		" ON CONFLICT (actor) DO UPDATE SET tx_retries = excluded.tx_retries"
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = eng.Stop(stopCtx)
			_, _ = pool.Exec(stopCtx, stats, actor, drv.Stats().TxRetries)
			cancel()
			return 0
		case <-tick.C:
			if n := drv.Stats().TxRetries; n != last {
				if _, err := pool.Exec(ctx, stats, actor, n); err == nil {
					last = n
				}
			}
		}
	}
}
