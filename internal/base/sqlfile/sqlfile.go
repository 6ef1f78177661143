// Package sqlfile reads a driver's named SQL statements from .sql files.
//
// Each statement follows a "-- name: NAME" line and runs to the next such
// line. A piece of SQL shared by several statements follows a
// "-- fragment: NAME" line and is used as {fragment:NAME}; fragments may use
// fragments. Other comment lines are dropped, and the replacer given to Load
// fills the driver's own placeholders ({schema}, column lists).
package sqlfile

import (
	"bufio"
	"fmt"
	"io/fs"
	"strings"
)

// Queries holds every named statement, placeholders and fragments filled in.
type Queries map[string]string

// Load reads every file of dir in fsys. driver names the driver in errors:
// a name defined twice, or a statement that uses an undefined fragment.
func Load(fsys fs.FS, dir, driver string, fill *strings.Replacer) (Queries, error) {
	out := Queries{}
	err := fs.WalkDir(fsys, dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		var name string
		var b strings.Builder
		flush := func() error {
			if name == "" {
				return nil
			}
			if _, dup := out[name]; dup {
				return fmt.Errorf("%s: query %q defined twice", driver, name)
			}
			out[name] = fill.Replace(strings.TrimSpace(b.String()))
			b.Reset()
			return nil
		}
		sc := bufio.NewScanner(strings.NewReader(string(body)))
		for sc.Scan() {
			line := sc.Text()
			if n, ok := strings.CutPrefix(line, "-- name: "); ok {
				if err := flush(); err != nil {
					return err
				}
				name = strings.TrimSpace(n)
				continue
			}
			if n, ok := strings.CutPrefix(line, "-- fragment: "); ok {
				if err := flush(); err != nil {
					return err
				}
				name = "{fragment:" + strings.TrimSpace(n) + "}"
				continue
			}
			if name != "" && !strings.HasPrefix(strings.TrimSpace(line), "--") {
				b.WriteString(line)
				b.WriteByte('\n')
			}
		}
		if err := sc.Err(); err != nil {
			return err
		}
		return flush()
	})
	if err != nil {
		return nil, err
	}
	return out.expandFragments(driver)
}

// expandFragments puts the fragments into the statements that use them and
// drops them from q.
func (q Queries) expandFragments(driver string) (Queries, error) {
	var pairs []string
	for name, body := range q {
		if strings.HasPrefix(name, "{fragment:") {
			pairs = append(pairs, name, body)
			delete(q, name)
		}
	}
	expand := strings.NewReplacer(pairs...)
	for name, body := range q {
		// Fragments may use fragments: expand until nothing changes.
		for i := 0; i < 4 && strings.Contains(body, "{fragment:"); i++ {
			body = expand.Replace(body)
		}
		if strings.Contains(body, "{fragment:") {
			return nil, fmt.Errorf("%s: query %q uses an undefined fragment", driver, name)
		}
		q[name] = strings.TrimSpace(body)
	}
	return q, nil
}

// Get returns the statement named name. Names are constants of the driver,
// whose tests load every one, so a missing name is a bug: it panics.
func (q Queries) Get(name string) string {
	s, ok := q[name]
	if !ok {
		panic("sqlfile: no query named " + name)
	}
	return s
}
