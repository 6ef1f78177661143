package cli

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Clean returns s made safe to show on a terminal, as one line: every rune
// that does not print (control characters such as ESC, newline and tab, C1
// controls, bidirectional overrides, line separators: whatever
// strconv.IsPrint rejects, except the space) is written as its Go escape
// (\x1b, \n, \t, \u202e) and each byte of invalid UTF-8 as \xNN.
// Everything else is unchanged. (A backslash is left alone, so that the
// Go-quoted strings of error messages read as they were written; a stored
// backslash sequence is harmless text.)
//
// Every piece of text the command writes in text mode passes through Clean
// (tables, details, progress, errors, the engine's log lines); JSON output
// goes through cleanJSON instead.
func Clean(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case strconv.IsPrint(r):
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRune(r) // '\x1b', '\u202e': never a quote, which prints
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// isClean reports whether Clean would return s unchanged: printable ASCII.
// Anything else takes the careful path.
func isClean(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

// cleanJSON returns the JSON text b with every rune inside a string that
// does not print (see Clean) written as a \u escape, and invalid UTF-8 as
// \ufffd. The result decodes to exactly the values b decodes to (the JSON
// encoder already escapes control characters below U+0020; this also
// covers DEL, C1 controls, bidirectional overrides and the like), so -json
// output stays exact and is still safe to print. Outside strings b is left
// as it is.
func cleanJSON(b []byte) []byte {
	if isPlainJSON(b) {
		return b
	}
	var out bytes.Buffer
	out.Grow(len(b) + 16)
	inString, escaped := false, false
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if !inString {
			if r == '"' {
				inString = true
			}
			out.Write(b[i : i+size])
			i += size
			continue
		}
		switch {
		case escaped:
			escaped = false
			out.Write(b[i : i+size])
		case r == '\\':
			escaped = true
			out.WriteByte('\\')
		case r == '"':
			inString = false
			out.WriteByte('"')
		case r == utf8.RuneError && size == 1:
			out.WriteString(`\ufffd`)
		case strconv.IsPrint(r):
			out.Write(b[i : i+size])
		default:
			if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
				fmt.Fprintf(&out, `\u%04x\u%04x`, r1, r2)
			} else {
				fmt.Fprintf(&out, `\u%04x`, r)
			}
		}
		i += size
	}
	return out.Bytes()
}

// isPlainJSON reports whether b is printable ASCII and newlines, which
// cleanJSON leaves as they are.
func isPlainJSON(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\n') || c > '~' {
			return false
		}
	}
	return true
}

// cleanLines is a writer that cleans each line written through it (see
// Clean) and keeps the newlines: for the engine's log lines. Each Write is
// taken to end where a log record ends.
type cleanLines struct{ w io.Writer }

func (c cleanLines) Write(p []byte) (int, error) {
	lines := strings.SplitAfter(string(p), "\n")
	var b strings.Builder
	for _, l := range lines {
		body, nl := strings.CutSuffix(l, "\n")
		b.WriteString(Clean(body))
		if nl {
			b.WriteByte('\n')
		}
	}
	if _, err := io.WriteString(c.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}
