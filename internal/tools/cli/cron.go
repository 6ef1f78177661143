package cli

import (
	"flag"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// CronJSON is a periodic schedule in -json output (cron list).
type CronJSON struct {
	Name      string     `json:"name"`
	Kind      string     `json:"kind"`
	Spec      string     `json:"spec"`
	TimeZone  string     `json:"time_zone"`
	Policy    string     `json:"policy"`
	LastRunAt *time.Time `json:"last_run_at"`
	NextRunAt time.Time  `json:"next_run_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

func cronJSON(rows []*acidic.Periodic) []CronJSON {
	out := make([]CronJSON, 0, len(rows))
	for _, s := range rows {
		out = append(out, CronJSON{Name: s.Name, Kind: s.Kind, Spec: s.Spec, TimeZone: s.TimeZone, Policy: string(s.Missed),
			LastRunAt: nullTime(s.LastRunAt), NextRunAt: s.NextRunAt.UTC(), UpdatedAt: s.UpdatedAt.UTC()})
	}
	return out
}

func setupCronList(e *env, _ *flag.FlagSet) func([]string) (func() error, error) {
	return func(args []string) (func() error, error) {
		if err := wantArgs("cron list", args); err != nil {
			return nil, err
		}
		return func() error {
			rows, err := e.drv.PeriodicList(e.ctx, storage.PeriodicListParams{})
			if err != nil {
				return err
			}
			return e.printer().emit(cronJSON(rows), func(t *textOut) {
				if len(rows) == 0 {
					t.linef("no periodic schedules in %s", e.place())
					return
				}
				tb := t.table("NAME", "KIND", "SPEC", "TIME ZONE", "MISSED", "LAST RUN", "NEXT RUN")
				for _, s := range rows {
					next := s.NextRunAt
					tb.row(s.Name, s.Kind, s.Spec, s.TimeZone, string(s.Missed), timeText(s.LastRunAt), timeText(&next))
				}
				tb.flush()
			})
		}, nil
	}
}
