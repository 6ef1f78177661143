package cli_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acidic-go/acidic/internal/tools/cli"
)

// TestSQLiteDatabase runs the command on a SQLite file named by
// -database sqlite:PATH: an unmigrated file is refused as such, migrate up
// makes it current, and the commands read it.
func TestSQLiteDatabase(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := "sqlite:" + filepath.Join(t.TempDir(), "acidic.db")
	if r := runCLI(ctx, nil, "-database", db, "queues"); r.code != cli.ExitNotMigrated {
		t.Fatalf("queues on a new file: exit %d, want %d (not migrated)\n%s%s", r.code, cli.ExitNotMigrated, r.stdout, r.stderr)
	}
	if r := runCLI(ctx, nil, "-database", db, "migrate", "up"); r.code != cli.ExitOK {
		t.Fatalf("migrate up: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{{"migrate", "status"}, {"queues"}, {"runs", "list"}, {"jobs", "list"}, {"cron", "list"}, {"nodes"}} {
		r := runCLI(ctx, nil, append([]string{"-database", db}, args...)...)
		if r.code != cli.ExitOK {
			t.Errorf("%s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	if r := runCLI(ctx, nil, "-database", "sqlite:", "queues"); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "sqlite: needs a file path") {
		t.Errorf("empty sqlite path: exit %d, stderr %q; want a usage error naming the problem", r.code, r.stderr)
	}
}
