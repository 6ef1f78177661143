package queue_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
)

// connectAsRoleWithoutGrants creates a role that may connect to the test
// database and has no grant on anything in it, and returns a connection as
// that role. Both go at cleanup.
func connectAsRoleWithoutGrants(t *testing.T, drv *postgres.Driver) *pgx.Conn {
	t.Helper()
	ctx := ctxT(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	role := "acidic_nogrants_" + hex.EncodeToString(b[:])
	ident := pgx.Identifier{role}.Sanitize()
	execSQL(t, drv, "CREATE ROLE "+ident+" LOGIN")
	t.Cleanup(func() {
		// DROP OWNED revokes the CONNECT grant below.
		for _, q := range []string{"DROP OWNED BY " + ident, "DROP ROLE " + ident} {
			if _, err := drv.Pool().Exec(context.Background(), q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
	execSQL(t, drv, "DO $$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO "+role+"', current_database()); END $$")
	cfg, err := pgx.ParseConfig(testURL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Password = role, ""
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	// It really has no grants: it can read neither the jobs nor the key
	// that hashes queue names.
	for _, tbl := range []string{"jobs", "notify_key"} {
		var pgErr *pgconn.PgError
		if _, err := conn.Exec(ctx, "SELECT * FROM "+table(drv, tbl)); !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Fatalf("the role without grants read %s: %v, want permission denied (42501)", tbl, err)
		}
	}
	return conn
}

// Notifications are only hints, and their payloads name nothing. A role that
// can connect but has no grants on the schema forges "cancel:<id>" (and other
// control payloads) for a running job: the job keeps running, while a real
// Cancel of another job reaches that job through its notification. Listening
// on the schema's channels meanwhile, the role sees jobs inserted and
// cancelled but learns no queue name and no job id.
func TestGuaranteeNotificationsAreOnlyHints(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: it proves NOTIFY is only a hint with a role that may not LISTEN and pg_stat_activity.
	drv := testdb.New(t, testdb.Options{})
	ctx := ctxT(t)
	// Job ids long enough that finding one in a payload means something.
	execSQL(t, drv, "ALTER TABLE "+table(drv, "jobs")+" ALTER COLUMN id RESTART WITH 7301002003001")
	var b [4]byte
	_, _ = rand.Read(b[:])
	secretQueue := "payroll_" + hex.EncodeToString(b[:])

	ws := queue.NewWorkers()
	release := make(chan struct{})
	var mu sync.Mutex
	jobCtxs := map[int64]context.Context{}
	started := make(chan int64, 2)
	ended := make(chan int64, 2)
	_ = ws.Handle("block", func(ctx context.Context, job *acidic.Job) error {
		mu.Lock()
		jobCtxs[job.ID] = ctx
		mu.Unlock()
		started <- job.ID
		select {
		case <-ctx.Done():
			ended <- job.ID
			return ctx.Err()
		case <-release:
			return nil
		}
	}, queue.KindOptions{})
	cfg := fastConfig(ws, 2)
	cfg.Queues = map[string]queue.QueueConfig{secretQueue: {MaxWorkers: 2}}
	cfg.PollInterval = time.Hour
	cfg.HeartbeatInterval, cfg.RescueAfter = time.Hour, 2*time.Hour
	c := newClient(t, drv, cfg)
	start(t, c)
	t.Cleanup(func() { close(release) }) // runs before the client stops
	waitQueueListening(t, drv)

	spy := connectAsRoleWithoutGrants(t, drv)
	insertChannel := drv.Schema() + "." + storage.TopicInsert
	controlChannel := drv.Schema() + "." + storage.TopicControl
	for _, ch := range []string{insertChannel, controlChannel} {
		if _, err := spy.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			t.Fatalf("the role without grants cannot LISTEN: %v", err)
		}
	}

	var victim, cancelled int64
	for _, p := range []*int64{&victim, &cancelled} {
		j, err := c.Enqueue(ctx, "block", nil, queue.EnqueueOptions{Queue: secretQueue})
		if err != nil {
			t.Fatal(err)
		}
		*p = j.ID
	}
	for range 2 {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("the jobs did not start")
		}
	}

	// The forgeries: the old command format, a bare id, and an empty hint.
	for _, payload := range []string{"cancel:" + strconv.FormatInt(victim, 10), strconv.FormatInt(victim, 10), ""} {
		if _, err := spy.Exec(ctx, "SELECT pg_notify($1, $2)", controlChannel, payload); err != nil {
			t.Fatalf("the role without grants cannot NOTIFY: %v", err)
		}
	}
	// A real cancellation, sent after the forgeries: once it has reached
	// its job, the client has handled the forgeries too.
	if _, err := c.Cancel(ctx, cancelled); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-ended:
		if id != cancelled {
			t.Fatalf("job %d ended first, want the cancelled job %d", id, cancelled)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled job's context was not cancelled within 10s")
	}
	mu.Lock()
	victimCtx := jobCtxs[victim]
	mu.Unlock()
	if err := victimCtx.Err(); err != nil {
		t.Fatalf("a forged control notification cancelled job %d: %v (cause %v)", victim, err, context.Cause(victimCtx))
	}
	if j, err := drv.JobGet(ctx, storage.JobGetParams{ID: victim}); err != nil || j.State != acidic.JobRunning {
		t.Fatalf("job %d after the forgeries: %+v, %v; want running", victim, j, err)
	}

	// Everything sent so far reaches the spy before these markers.
	for _, ch := range []string{insertChannel, controlChannel} {
		execSQL(t, drv, "SELECT pg_notify($1, 'marker')", ch)
	}
	own := spy.PgConn().PID()
	seen := map[string][]string{}
	for markers := 0; markers < 2; {
		n, err := spy.WaitForNotification(ctx)
		if err != nil {
			t.Fatalf("listening: %v", err)
		}
		switch {
		case n.PID == own: // its own forgeries
		case n.Payload == "marker":
			markers++
		default:
			seen[n.Channel] = append(seen[n.Channel], n.Payload)
		}
	}
	if len(seen[insertChannel]) == 0 || len(seen[controlChannel]) == 0 {
		t.Fatalf("the spy saw %v: want insert and control notifications, or this test proves nothing", seen)
	}
	plain := sha256.Sum256([]byte(secretQueue))
	secrets := []string{secretQueue, strconv.FormatInt(victim, 10), strconv.FormatInt(cancelled, 10), hex.EncodeToString(plain[:8])}
	for ch, payloads := range seen {
		for _, p := range payloads {
			for _, s := range secrets {
				if strings.Contains(p, s) {
					t.Errorf("a role without grants read %q from the payload %q on %s", s, p, ch)
				}
			}
		}
	}
}
