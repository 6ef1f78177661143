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
		if !strings.Contains(q.Get(name), "released AS (") {
			t.Errorf("%s does not free the leases of the attempts it ends", name)
		}
	}
}
