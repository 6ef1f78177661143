package sqlfile

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{"sql/a.sql": {Data: []byte(`-- name: A
-- a comment, dropped
SELECT {fragment:cols} FROM {schema}.t;
-- fragment: cols
{fragment:inner}, b
-- fragment: inner
a
`)}}
	q, err := Load(fsys, "sql", "test", strings.NewReplacer("{schema}", `"s"`))
	if err != nil {
		t.Fatal(err)
	}
	if got := q.Get("A"); got != `SELECT a, b FROM "s".t;` || len(q) != 1 {
		t.Fatalf("A = %q (%d statements), want the fragments and schema filled in", got, len(q))
	}
}

func TestLoadRefusesBadFiles(t *testing.T) {
	for name, text := range map[string]string{
		"undefined fragment": "-- name: A\nSELECT {fragment:missing}\n",
		"defined twice":      "-- name: A\nSELECT 1\n-- name: A\nSELECT 2\n",
	} {
		if _, err := Load(fstest.MapFS{"sql/x.sql": {Data: []byte(text)}}, "sql", "test", strings.NewReplacer()); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}
