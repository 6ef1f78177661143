package cli

import (
	"flag"
	"fmt"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// printStepDetails writes what is kept with a step beside its step log
// entry: its failed attempts, then its log records, one line each (control
// characters escaped by line).
func printStepDetails(t *textOut, s acidic.Step) {
	if len(s.Failures) > 0 {
		head := fmt.Sprintf("  failed attempts (%d)", len(s.Failures))
		if s.FailuresDropped > 0 {
			head = fmt.Sprintf("  failed attempts (the latest %d; %d older not kept)", len(s.Failures), s.FailuresDropped)
		}
		t.line(head + ":")
		for _, f := range s.Failures {
			t.linef("    attempt %d  %s  took %s  %s", f.Attempt, f.StartedAt.Format(time.RFC3339), durationText(f.FailedAt.Sub(f.StartedAt)), f.Error)
		}
	}
	if len(s.Logs) > 0 {
		t.line("  logs:")
		for _, l := range s.Logs {
			attrs := ""
			if len(l.Attrs) > 0 {
				attrs = " " + string(l.Attrs)
			}
			attempt := ""
			if l.Attempt > 0 {
				attempt = fmt.Sprintf("  attempt %d", l.Attempt)
			}
			t.linef("    %s %-5s%s  %s%s", l.Time.Format("15:04:05.000"), l.Level, attempt, l.Message, attrs)
		}
	}
}

// tagFlag defines the repeatable -tag flag of a list command into tags.
func tagFlag(fs *flag.FlagSet, tags *[]string, what string) {
	fs.Func("tag", "only "+what+" carrying this `tag` (repeat it: all must match)", func(s string) error {
		*tags = append(*tags, s)
		return nil
	})
}

// checkTagFlags refuses tags no row can carry as a usage error.
func checkTagFlags(cmd string, tags []string) error {
	if err := storage.CheckTags(tags); err != nil {
		return fmt.Errorf("%w: %s: -tag: %w", errUsage, cmd, err)
	}
	return nil
}

// tagList is tags for -json: [] when none.
func tagList(tags []string) []string {
	if tags == nil {
		return []string{}
	}
	return tags
}
