package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"
)

// The driver's own statements on the writer (wq) run on the library's
// connection directly, prepared once, rather than through database/sql:
// a step runs several of them while it holds the write lock, and
// database/sql's locks, context plumbing and conversions were about a fifth
// of a step's CPU. Only the holder of the write lock uses them, as it alone
// uses the writer. Your own SQL (SQLTx), the control statements and the
// readers still go through database/sql.

// rowset is what the scan functions read: *sql.Rows, or rows of the
// library's connection.
type rowset interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// directStmt is a statement prepared on the library's connection.
type directStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// directConn is the library's connection, as the writer uses it.
type directConn interface {
	driver.Conn
	driver.ConnPrepareContext
}

// bind converts args as database/sql would (driver.DefaultParameterConverter)
// into the writer's argument buffer, which the next call reuses: the
// library copies the values when it binds them.
func (d *Driver) bind(args []any) ([]driver.NamedValue, error) {
	nv := d.wargs[:0]
	for i, a := range args {
		var v driver.Value
		switch a := a.(type) {
		case nil, int64, string, []byte, bool, float64:
			v = a
		case int:
			v = int64(a)
		default:
			var err error
			if v, err = driver.DefaultParameterConverter.ConvertValue(a); err != nil {
				return nil, fmt.Errorf("sqlite: argument %d: %w", i+1, err)
			}
		}
		nv = append(nv, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	d.wargs = nv
	return nv, nil
}

// directRows are the rows of a query on the library's connection.
type directRows struct {
	rows driver.Rows
	vals []driver.Value
	err  error
	done bool
}

func (r *directRows) Next() bool {
	if r.done {
		return false
	}
	if r.vals == nil {
		r.vals = make([]driver.Value, len(r.rows.Columns()))
	}
	if err := r.rows.Next(r.vals); err != nil {
		if !errors.Is(err, io.EOF) {
			r.err = err
		}
		r.done = true
		_ = r.Close()
		return false
	}
	return true
}

func (r *directRows) Scan(dest ...any) error {
	if r.done || r.vals == nil {
		return errors.New("sqlite: Scan called without calling Next")
	}
	if len(dest) != len(r.vals) {
		return fmt.Errorf("sqlite: %d destinations for %d columns", len(dest), len(r.vals))
	}
	for i, v := range r.vals {
		if err := assign(dest[i], v); err != nil {
			return fmt.Errorf("sqlite: column %d: %w", i, err)
		}
	}
	return nil
}

func (r *directRows) Err() error { return r.err }

func (r *directRows) Close() error {
	if r.rows == nil {
		return nil
	}
	err := r.rows.Close()
	r.rows, r.done = nil, true
	return err
}

// directRow is the first row of a query, as *sql.Row gives it.
type directRow struct {
	rows *directRows
	err  error
}

func (r directRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if r.rows.err != nil {
			return r.rows.err
		}
		return sql.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	return r.rows.Close()
}

// assign stores a column's value in dest as database/sql's Scan does for
// the destinations the driver scans into; NULL into a plain value is an
// error, as there.
func assign(dest any, v driver.Value) error {
	switch d := dest.(type) {
	case *int64:
		if x, ok := v.(int64); ok {
			*d = x
			return nil
		}
	case *int:
		if x, ok := v.(int64); ok {
			*d = int(x)
			return nil
		}
	case *string:
		switch x := v.(type) {
		case string:
			*d = x
			return nil
		case []byte:
			*d = string(x)
			return nil
		}
	case *[]byte:
		switch x := v.(type) {
		case nil:
			*d = nil
			return nil
		case []byte:
			*d = x // the library's own copy
			return nil
		case string:
			*d = []byte(x)
			return nil
		}
	case *bool:
		if x, ok := v.(int64); ok && (x == 0 || x == 1) {
			*d = x == 1
			return nil
		}
	case *any:
		*d = v
		return nil
	case sql.Scanner:
		return d.Scan(v)
	}
	// Named types (an int or string kind), as database/sql converts them.
	rv := reflect.ValueOf(dest)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		e := rv.Elem()
		switch x := v.(type) {
		case int64:
			switch e.Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				if !e.OverflowInt(x) {
					e.SetInt(x)
					return nil
				}
			}
		case string:
			if e.Kind() == reflect.String {
				e.SetString(x)
				return nil
			}
		}
	}
	return fmt.Errorf("cannot store %T in %T", v, dest)
}

// directStmtOf returns the writer's statement name, prepared once.
func (d *Driver) directStmtOf(name string) (directStmt, error) {
	if st := d.wdirect[name]; st != nil {
		return st, nil
	}
	s, err := d.wraw.PrepareContext(context.Background(), d.q.Get(name))
	if err != nil {
		return nil, fmt.Errorf("sqlite: prepare %s: %w", name, wrapErr(err))
	}
	st, ok := s.(directStmt)
	if !ok {
		_ = s.Close()
		return nil, fmt.Errorf("sqlite: the library's statement %T takes no context", s)
	}
	d.wdirect[name] = st
	return st, nil
}
