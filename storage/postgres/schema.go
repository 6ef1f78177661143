package postgres

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/acidic-go/acidic"
)

// DefaultSchema is the schema used when Options.Schema is empty.
const DefaultSchema = "acidic"

// ErrInvalidSchema is returned, wrapped with the reason, for a schema name
// PostgreSQL would not keep as given (see CheckSchema). The error also
// matches acidic.ErrInvalid.
var ErrInvalidSchema = errors.New("postgres: invalid schema name")

// MaxSchemaBytes is the longest schema name: PostgreSQL silently cuts
// identifiers to 63 bytes, so two longer names would share one schema (and
// not one migration lock).
const MaxSchemaBytes = 63

// CheckSchema returns nil if name can name Acidic's schema ("" stands for
// DefaultSchema), and otherwise ErrInvalidSchema naming the rule it breaks:
// at most MaxSchemaBytes bytes of UTF-8 without control characters (NUL
// above all), not starting with "pg_" (PostgreSQL reserves those). Any other
// character is fine: the name is always quoted.
func CheckSchema(name string) error {
	if name == "" {
		return nil
	}
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %w: schema %s: %s", ErrInvalidSchema, acidic.ErrInvalid, quoteShort(name), fmt.Sprintf(format, args...))
	}
	if len(name) > MaxSchemaBytes {
		return invalid("%d bytes; PostgreSQL keeps at most %d of a name", len(name), MaxSchemaBytes)
	}
	if !utf8.ValidString(name) {
		return invalid("not valid UTF-8")
	}
	for i, r := range name {
		if unicode.IsControl(r) {
			return invalid("control character %U at byte %d", r, i)
		}
	}
	if strings.HasPrefix(name, "pg_") {
		return invalid(`names starting with "pg_" are reserved for PostgreSQL's own schemas`)
	}
	return nil
}

// quoteShort quotes a schema name for an error message, cut after 80 bytes.
func quoteShort(s string) string {
	if len(s) > 80 {
		return strconv.Quote(s[:80]) + "…"
	}
	return strconv.Quote(s)
}
