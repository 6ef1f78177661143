package cli

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/acidic-go/acidic/migrations"
	"github.com/acidic-go/acidic/storage/postgres"
)

func setupMigrateUp(e *env, _ *flag.FlagSet) func([]string) (func() error, error) {
	return func(args []string) (func() error, error) {
		if err := wantArgs("migrate up", args); err != nil {
			return nil, err
		}
		return func() error {
			m := e.drv.Migrator()
			applied, err := m.Up(e.ctx)
			if err != nil {
				return err
			}
			if applied == nil {
				applied = []int{}
			}
			return e.printer().emit(MigrateUpJSON{Schema: e.schemaName(), Applied: applied}, func(t *textOut) {
				if len(applied) == 0 {
					t.linef("schema %s is up to date (version %d)", e.schemaName(), m.Latest())
					return
				}
				t.linef("applied %s to schema %s (now at version %d)", versions(applied), e.schemaName(), m.Latest())
			})
		}, nil
	}
}

func setupMigrateDown(e *env, _ *flag.FlagSet) func([]string) (func() error, error) {
	return func(args []string) (func() error, error) {
		if err := wantArgs("migrate down", args, "VERSION"); err != nil {
			return nil, err
		}
		v, err := strconv.Atoi(args[0])
		if err != nil {
			return nil, fmt.Errorf("%w: migrate down: version %q is not a number", errUsage, args[0])
		}
		if latest := latestVersion(); v < 0 || v > latest {
			return nil, fmt.Errorf("%w: migrate down: unknown version %d (known: 0..%d)", errUsage, v, latest)
		}
		return func() error {
			reverted, err := e.drv.Migrator().Down(e.ctx, v)
			if err != nil {
				return err
			}
			if reverted == nil {
				reverted = []int{}
			}
			return e.printer().emit(MigrateDownJSON{Schema: e.schemaName(), Reverted: reverted}, func(t *textOut) {
				if len(reverted) == 0 {
					t.linef("schema %s has nothing above version %d to revert", e.schemaName(), v)
					return
				}
				t.linef("reverted %s in %s (now at version %d)", versions(reverted), e.place(), v)
			})
		}, nil
	}
}

func setupMigrateStatus(e *env, _ *flag.FlagSet) func([]string) (func() error, error) {
	return func(args []string) (func() error, error) {
		if err := wantArgs("migrate status", args); err != nil {
			return nil, err
		}
		return func() error {
			st, err := e.drv.Migrator().Status(e.ctx)
			if err != nil {
				return err
			}
			return e.printer().emit(migrationsJSON(st), func(t *textOut) {
				tb := t.table("VERSION", "NAME", "APPLIED")
				for _, s := range st {
					at := "no"
					if s.Applied {
						at = s.AppliedAt.Format(time.RFC3339)
					}
					tb.row(strconv.Itoa(s.Version), s.Name, at)
				}
				tb.flush()
			})
		}, nil
	}
}

// latestVersion is the highest migration version this build knows for
// the database, without connecting to it.
func latestVersion() int { return migrations.New(postgres.New(nil, postgres.Options{})).Latest() }

// versions formats migration versions: "1, 2, 3".
func versions(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ", ")
}
