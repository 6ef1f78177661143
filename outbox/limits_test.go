package outbox_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/outbox"
	"github.com/acidic-go/acidic/storage"
)

// TestDirtyPublishErrorIsRecorded: a Publisher error holding NUL and invalid
// UTF-8 (which PostgreSQL cannot store), or 1 MB long, is recorded as the
// message's last error, cleaned and cut by storage.Text, and the message is
// due again after the Backoff. Before, recording the failure failed and the
// message waited for its lease instead.
func TestDirtyPublishErrorIsRecorded(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		stage(t, drv, []string{"dirty", "huge"}, 0, 1)
		huge := strings.Repeat("é", 1<<19)
		r := newRelay(t, drv, outbox.Config{
			Publisher: outbox.PublisherFunc(func(_ context.Context, m *acidic.OutboxMessage) error {
				if m.Key == "dirty" {
					return errors.New("broker \x00 said \xff no")
				}
				return errors.New(huge)
			}),
			Backoff: func(int, error) time.Duration { return time.Hour },
			Lease:   time.Minute,
			Logger:  quiet,
		})
		res, err := r.RunOnce(ctxT(t))
		if err != nil || res.Failed != 2 {
			t.Fatalf("RunOnce: %+v, %v; want two failures recorded", res, err)
		}
		for _, m := range listAll(t, drv) {
			want := storage.Text(huge)
			if m.Key == "dirty" {
				want = "broker  said \uFFFD no"
			}
			if m.LastError != want || m.Attempts != 1 || !m.NextAttemptAt.After(time.Now().Add(50*time.Minute)) {
				t.Errorf("message %s: last error %.40q (%d bytes), attempts %d, next attempt %v; want the cleaned error, due in an hour",
					m.Key, m.LastError, len(m.LastError), m.Attempts, m.NextAttemptAt)
			}
			if len(m.LastError) > storage.MaxTextBytes {
				t.Errorf("message %s: last error of %d bytes", m.Key, len(m.LastError))
			}
		}
	})
}
