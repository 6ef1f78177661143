package acidic_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/acidic-go/acidic"

// layers says which of the module's packages each package may import
// (docs/architecture.md, "Layers"). A package matches the longest key that
// is its path or a parent of it; "." is the module root, the vocabulary.
// Tools, the test kit, examples and commands may import anything.
var layers = map[string][]string{
	".":                   {},
	"storage":             {"."},
	"internal/base":       {".", "storage", "internal/base"},
	"migrations":          {".", "storage", "internal/base"},
	"storage/postgres":    {".", "storage", "internal/base", "migrations"},
	"storage/sqlite":      {".", "storage", "internal/base", "migrations"},
	"storage/storagetest": {".", "storage", "internal/base", "migrations"},
	"storage/storeurl":    {".", "storage", "internal/base", "migrations", "storage/postgres", "storage/sqlite"},
	"run":                 {".", "storage", "internal/base"},
	"events":              {"."},
	"queue":               {".", "storage", "internal/base", "events"},
	"steps":               {".", "storage", "internal/base", "run", "queue", "events"},
	"workflow":            {".", "storage", "internal/base", "run", "queue", "steps", "events"},
	"outbox":              {".", "storage", "internal/base", "queue", "events"},
	"otelacidic":          {".", "storage", "events", "queue", "steps", "workflow", "outbox"},
	"acidictest": {".", "storage", "internal/base", "run", "queue", "steps", "workflow", "outbox",
		"events", "migrations", "storage/postgres", "storage/sqlite", "internal/testkit/testdb"},
	"internal/tools":   nil,
	"internal/testkit": nil,
	"examples":         nil,
	"cmd":              nil,
}

// pgxAllowed are the packages whose non-test code may import pgx: the
// PostgreSQL driver, storeurl (which opens a pool for a PostgreSQL URL),
// and the tools and test kit that open connections.
var pgxAllowed = []string{"storage/postgres", "storage/storeurl", "internal/tools", "internal/testkit", "examples", "cmd"}

// TestLayers checks the imports of every package's non-test files against
// the layers: nothing imports upwards, and nothing above the driver speaks
// pgx.
func TestLayers(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		allowed, rule, ok := layerOf(pkg)
		if !ok {
			t.Errorf("%s: package %s has no layer in layers_test.go (and docs/architecture.md)", path, pkg)
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/jackc/pgx") && !under(pkg, pgxAllowed) {
				t.Errorf("%s imports %s: only the PostgreSQL driver may speak pgx", path, p)
			}
			if allowed == nil || (p != module && !strings.HasPrefix(p, module+"/")) {
				continue
			}
			target := strings.TrimPrefix(strings.TrimPrefix(p, module), "/")
			if target == "" {
				target = "."
			}
			if target == pkg {
				continue
			}
			if !under(target, allowed) {
				t.Errorf("%s imports %s: layer %q may import only %v", path, target, rule, allowed)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("go.mod"); err != nil {
		t.Fatal("run from the module root:", err)
	}
}

// layerOf returns the allowed imports of pkg, by the longest matching key.
func layerOf(pkg string) (allowed []string, rule string, ok bool) {
	best := -1
	for k, v := range layers {
		if pkg == k || k != "." && strings.HasPrefix(pkg, k+"/") {
			if len(k) > best {
				best, allowed, rule, ok = len(k), v, k, true
			}
		}
	}
	return allowed, rule, ok
}

// under reports whether pkg is one of roots or inside one.
func under(pkg string, roots []string) bool {
	for _, r := range roots {
		if pkg == r || r != "." && strings.HasPrefix(pkg, r+"/") {
			return true
		}
	}
	return false
}
