package cli

import "github.com/acidic-go/acidic/storage/sqlite"

// place names where the command looks, for its messages: "schema NAME" on
// PostgreSQL, "file PATH" on SQLite, which has no schemas (-schema does not
// apply to it).
func (e *env) place() string {
	if s, ok := e.drv.(*sqlite.Driver); ok {
		return "file " + s.Path()
	}
	return "schema " + e.schemaName()
}
