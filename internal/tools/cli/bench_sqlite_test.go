package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acidic-go/acidic/internal/tools/cli"
)

// TestBenchSQLite runs acidic bench on a SQLite file: it measures in a
// throwaway file beside the one named, which it leaves untouched (here: not
// even created), and removes its own file afterwards.
func TestBenchSQLite(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	path := filepath.Join(dir, "acidic.db")
	r := runCLI(ctx, nil, "-database", "sqlite:"+path, "bench", "-quick", "-q", "-workers", "2", "-scenario", "workflows,baseline")
	if r.code != cli.ExitOK {
		t.Fatalf("bench: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"raw BEGIN IMMEDIATE; 1-row UPDATE; COMMIT", "efficiency: steps/s ÷ tx/s", "SQLite 3."} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("bench left %s behind", e.Name())
	}
	if r := runCLI(ctx, nil, "-database", "sqlite:", "bench", "-quick"); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "sqlite: needs a file path") {
		t.Errorf("empty sqlite path: exit %d, stderr %q; want a usage error naming the problem", r.code, r.stderr)
	}
}
