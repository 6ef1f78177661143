package postgres

import (
	"regexp"
	"strings"
	"testing"
)

// placeholder matches {name} and {fragment:name}, not a quoted jsonb path
// such as '{snoozes}'.
var placeholder = regexp.MustCompile(`[^']\{[a-z_]+(:[a-z_]+)?\}`)

func TestQueriesHaveEveryPlaceholderFilled(t *testing.T) {
	q, err := loadQueries("acidic")
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range q {
		if strings.HasPrefix(name, "{") {
			t.Errorf("fragment %s left among the queries", name)
		}
		if m := placeholder.FindString(body); m != "" {
			t.Errorf("query %s has an unfilled placeholder %q", name, m)
		}
	}
	for _, name := range []string{"JobFinish", "JobRescue", "JobCancel"} {
		if !strings.Contains(q.get(name), "released AS (") {
			t.Errorf("%s does not free the leases of the attempts it ends", name)
		}
	}
}

func TestUndefinedFragmentIsAnError(t *testing.T) {
	q := queries{"A": "SELECT {fragment:missing}", "{fragment:cols}": "1"}
	if _, err := q.expandFragments(); err == nil {
		t.Fatal("a query using an undefined fragment loaded")
	}
	q = queries{"A": "SELECT {fragment:cols}", "{fragment:cols}": "1"}
	got, err := q.expandFragments()
	if err != nil || got["A"] != "SELECT 1" || len(got) != 1 {
		t.Fatalf("expandFragments = %v, %v", got, err)
	}
}
