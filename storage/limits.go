package storage

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/acidic-go/acidic"
)

// Limits on what a write may carry. Every write is checked against them before
// anything reaches the database (see the Validate methods), and a value beyond
// one is refused with acidic.ErrInvalid naming the field and the limit.
// docs/limits.md lists every field with its limit.
const (
	// MaxNameBytes bounds a name: a queue, a job kind, a workflow, a step, a
	// client's ID. A name is 1 to MaxNameBytes bytes of UTF-8 without control
	// characters (no NUL, tab or newline).
	MaxNameBytes = 255
	// MaxKeyBytes bounds a key: a run's idempotency key, an outbox message's
	// topic and key. A key is 1 to MaxKeyBytes bytes of UTF-8 without NUL
	// (an outbox key may be empty). Keys are indexed; PostgreSQL refuses an
	// index entry over 2,704 bytes.
	MaxKeyBytes = 1024
	// MaxTextBytes bounds free text the engine stores: error messages of
	// jobs, runs, steps and outbox deliveries. Longer text is cut (see Text).
	MaxTextBytes = 8 << 10
	// MaxYear is the last year a scheduled time may fall in (UTC); the first
	// is year 1. PostgreSQL's timestamptz ends in year 294276.
	MaxYear = 9999
)

// JSON number limits of PostgreSQL's jsonb (its numeric type).
const (
	jsonbMaxIntDigits  = 131072 // digits before the decimal point
	jsonbMaxFracDigits = 16383  // digits after it, as written
	jsonbMaxExponent   = 1<<30 - 1
)

// CheckName returns nil if s is a valid name for field (see MaxNameBytes),
// and otherwise acidic.ErrInvalid, wrapped with field, the rule and where s breaks it.
func CheckName(field, s string) error { return invalidIf(nameProblem(field, s)) }

// CheckKey returns nil if s is a valid key for field (see MaxKeyBytes), and
// otherwise acidic.ErrInvalid, wrapped with field, the rule and where s breaks it.
func CheckKey(field, s string) error { return invalidIf(keyProblem(field, s)) }

// CheckTime returns nil if t is zero (which writes take as "now") or falls
// in years 1 to MaxYear (UTC), and otherwise acidic.ErrInvalid, wrapped with field.
func CheckTime(field string, t time.Time) error { return invalidIf(timeProblem(field, t)) }

// CheckJSON returns nil if raw is one JSON value that PostgreSQL's jsonb can
// store, and otherwise acidic.ErrInvalid, wrapped with field and the reason. Beyond
// valid JSON, jsonb needs valid UTF-8 (a JSON decoder would quietly turn bad
// bytes into U+FFFD), no \u0000 escape, surrogate escapes only in pairs, and
// numbers within its numeric type: at most 131,072 digits before the decimal
// point and 16,383 after.
func CheckJSON(field string, raw []byte) error { return invalidIf(jsonProblem(field, raw)) }

// nameProblem says why s is not a valid name, or returns "".
func nameProblem(field, s string) string {
	if s == "" {
		return field + " is empty"
	}
	if len(s) > MaxNameBytes {
		return fmt.Sprintf("%s %s is %d bytes; a name is at most %d", field, short(s), len(s), MaxNameBytes)
	}
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			return fmt.Sprintf("%s %s is not valid UTF-8 (byte %d)", field, short(s), i)
		case unicode.IsControl(r):
			return fmt.Sprintf("%s %s holds the control character %U at byte %d; a name is printable UTF-8", field, short(s), r, i)
		}
	}
	return ""
}

// keyProblem says why s is not a valid key, or returns "".
func keyProblem(field, s string) string {
	if s == "" {
		return field + " is empty"
	}
	return textProblem(field, s, MaxKeyBytes)
}

// textProblem says why a text column (or an index on one) cannot hold s,
// as long as max bytes: too long, not valid UTF-8, or holding NUL.
func textProblem(field, s string, max int) string {
	if len(s) > max {
		return fmt.Sprintf("%s %s is %d bytes; at most %d are allowed", field, short(s), len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Sprintf("%s %s is not valid UTF-8", field, short(s))
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return fmt.Sprintf("%s %s holds NUL at byte %d", field, short(s), i)
	}
	return ""
}

// timeProblem says why t cannot be a scheduled time, or returns "".
func timeProblem(field string, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	if y := t.UTC().Year(); y < 1 || y > MaxYear {
		return fmt.Sprintf("%s %s is outside years 1 to %d", field, t.UTC().Format(time.RFC3339), MaxYear)
	}
	return ""
}

// jsonProblem says why jsonb cannot store raw, or returns "".
func jsonProblem(field string, raw []byte) string {
	if !utf8.Valid(raw) {
		return field + " is not valid UTF-8"
	}
	if !json.Valid(raw) {
		return field + " is not valid JSON"
	}
	if problem := jsonbProblem(raw); problem != "" {
		return field + " holds " + problem
	}
	return ""
}

// encodedJSONProblem is jsonProblem for JSON the engine encoded itself with
// encoding/json, which needs no parsing again (a step's persisted state, its
// results): a third of the cost, on the path of every step. It still finds
// what encoding/json writes and jsonb refuses: \u0000 for a NUL in a
// string, invalid UTF-8 passed through a json.RawMessage, numbers beyond
// numeric.
func encodedJSONProblem(field string, raw []byte) string {
	if !utf8.Valid(raw) {
		return field + " is not valid UTF-8"
	}
	if problem := jsonbProblem(raw); problem != "" {
		return field + " holds " + problem
	}
	return ""
}

// jsonbProblem returns what jsonb would refuse in raw, a valid JSON text, or
// "" when it holds nothing of the kind.
func jsonbProblem(raw []byte) string {
	for i := 0; i < len(raw); {
		switch c := raw[i]; {
		case c == '"':
			end, problem := jsonbString(raw, i+1)
			if problem != "" {
				return problem
			}
			i = end
		case c == '-' || (c >= '0' && c <= '9'):
			end, problem := jsonbNumber(raw, i)
			if problem != "" {
				return problem
			}
			i = end
		default:
			i++
		}
	}
	return ""
}

// jsonbString scans the string whose contents start at raw[i] and returns
// the index after its closing quote.
func jsonbString(raw []byte, i int) (int, string) {
	for i < len(raw) {
		switch raw[i] {
		case '"':
			return i + 1, ""
		case '\\':
			if i+1 < len(raw) && raw[i+1] == 'u' {
				r := hex4(raw, i+2)
				switch {
				case r == 0:
					return i, `\u0000 (NUL), which PostgreSQL cannot store`
				case r >= 0xD800 && r < 0xDC00:
					if low := hex4(raw, i+8); i+7 < len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' && low >= 0xDC00 && low < 0xE000 {
						i += 12
						continue
					}
					return i, fmt.Sprintf(`the unpaired surrogate \u%04x, which PostgreSQL cannot store`, r)
				case r >= 0xDC00 && r < 0xE000:
					return i, fmt.Sprintf(`the unpaired surrogate \u%04x, which PostgreSQL cannot store`, r)
				}
				i += 6
				continue
			}
			i += 2
		default:
			i++
		}
	}
	return i, ""
}

// hex4 decodes the four hex digits at raw[i:]; -1 when they are not there.
func hex4(raw []byte, i int) int {
	if i+4 > len(raw) {
		return -1
	}
	n := 0
	for _, c := range raw[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | int(c-'a'+10)
		case c >= 'A' && c <= 'F':
			n = n<<4 | int(c-'A'+10)
		default:
			return -1
		}
	}
	return n
}

// jsonbNumber scans the number at raw[i] and returns the index after it, and
// why jsonb's numeric cannot hold it, if it cannot.
func jsonbNumber(raw []byte, i int) (int, string) {
	start := i
	if raw[i] == '-' {
		i++
	}
	digits := func() (n, significant int, zero bool) {
		zero = true
		for ; i < len(raw) && raw[i] >= '0' && raw[i] <= '9'; i++ {
			n++
			if raw[i] != '0' && zero {
				zero, significant = false, n
			}
		}
		return n, significant, zero
	}
	intDigits, intFirst, intZero := digits()
	var fracDigits, fracFirst int
	fracZero := true
	if i < len(raw) && raw[i] == '.' {
		i++
		fracDigits, fracFirst, fracZero = digits()
	}
	exp := int64(0)
	if i < len(raw) && (raw[i] == 'e' || raw[i] == 'E') {
		i++
		neg := false
		if i < len(raw) && (raw[i] == '+' || raw[i] == '-') {
			neg = raw[i] == '-'
			i++
		}
		for ; i < len(raw) && raw[i] >= '0' && raw[i] <= '9'; i++ {
			if exp <= jsonbMaxExponent {
				exp = exp*10 + int64(raw[i]-'0')
			}
		}
		if neg {
			exp = -exp
		}
	}
	tooBig := func() string {
		return fmt.Sprintf("the number %s, beyond what PostgreSQL's numeric holds (%d digits before the decimal point, %d after)",
			short(string(raw[start:i])), jsonbMaxIntDigits, jsonbMaxFracDigits)
	}
	if exp > jsonbMaxExponent || exp < -jsonbMaxExponent {
		return i, tooBig()
	}
	if scale := int64(fracDigits) - exp; scale > jsonbMaxFracDigits {
		return i, tooBig()
	}
	// The value's digits before the decimal point, counted from its first
	// significant digit.
	var weight int64
	switch {
	case !intZero:
		weight = int64(intDigits-intFirst+1) + exp
	case !fracZero:
		weight = exp - int64(fracFirst) + 1
	}
	if weight > jsonbMaxIntDigits {
		return i, tooBig()
	}
	return i, ""
}

// Text returns s as it can be stored as free text (an error message): bytes
// that are not valid UTF-8 replaced with U+FFFD, NUL removed, and, when the
// result is longer than MaxTextBytes, cut to that length (never inside a
// character) ending in a note of how long it was. Text of s that needs none
// of this is s.
func Text(s string) string {
	if len(s) <= MaxTextBytes && utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	if len(s) <= MaxTextBytes {
		return s
	}
	note := fmt.Sprintf(" … [cut: %d bytes in all]", len(s))
	end := MaxTextBytes - len(note)
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end] + note
}

// short quotes s for an error message, cut after 40 bytes so that a huge
// value does not make a huge message.
func short(s string) string {
	const max = 40
	if len(s) <= max {
		return strconv.Quote(s)
	}
	end := max
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return strconv.Quote(s[:end]) + "…"
}

// invalidIf returns acidic.ErrInvalid wrapped with problem, or nil when there is
// no problem.
func invalidIf(problem string) error {
	if problem == "" {
		return nil
	}
	return fmt.Errorf("%w: %s", acidic.ErrInvalid, problem)
}

// Caps of what is kept with each step of a run (StepLogs), and of tags.
const (
	// MaxStepLogRecords is how many log records are kept per step of a run,
	// over all its executions; later records are dropped and counted.
	MaxStepLogRecords = 100
	// MaxStepLogBytes is how many bytes of log records (message and
	// attributes, see LogRecordSize) are kept per step of a run; a record
	// that would pass it is dropped, and every one after it.
	MaxStepLogBytes = 64 << 10
	// MaxLogRecordBytes bounds one log record's message, and separately its
	// attributes' JSON; LogRecordOf cuts a message and replaces attributes
	// beyond it.
	MaxLogRecordBytes = 4 << 10
	// MaxStepFailures is how many failed attempts of one step are kept; the
	// oldest are forgotten first, and counted.
	MaxStepFailures = 25
	// MaxTags is how many tags a job or a run may carry.
	MaxTags = 16
	// MaxTagBytes bounds a tag: 1 to MaxTagBytes bytes of UTF-8 without
	// control characters, as a name.
	MaxTagBytes = 128
)

// CheckTags returns nil if tags are valid tags for a job or a run (at most
// MaxTags, each 1 to MaxTagBytes bytes of printable UTF-8, no tag twice),
// and otherwise acidic.ErrInvalid naming the problem. Filters
// (acidic.JobFilter.Tags, acidic.RunFilter.Tags) are checked the same way.
func CheckTags(tags []string) error { return invalidIf(tagsProblem(tags)) }

func tagsProblem(tags []string) string {
	if len(tags) > MaxTags {
		return fmt.Sprintf("%d tags; at most %d are allowed", len(tags), MaxTags)
	}
	for i, tag := range tags {
		if len(tag) > MaxTagBytes {
			return fmt.Sprintf("tag %s is %d bytes; a tag is at most %d", short(tag), len(tag), MaxTagBytes)
		}
		if p := nameProblem("tag", tag); p != "" {
			return p
		}
		for _, prev := range tags[:i] {
			if prev == tag {
				return fmt.Sprintf("tag %s given twice", short(tag))
			}
		}
	}
	return ""
}
