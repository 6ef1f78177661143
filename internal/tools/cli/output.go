package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// defaultWidth is the width long values are folded to when stdout is not a
// terminal.
const defaultWidth = 100

// printer writes a command's result: JSON (one value, indented) with -json,
// text otherwise. Text goes through Clean piece by piece, so no stored byte
// reaches the terminal raw; nothing else writes to stdout.
type printer struct {
	w     io.Writer
	json  bool
	width int // columns to fold long values to
}

// emit writes v as JSON, or calls text.
func (p *printer) emit(v any, text func(t *textOut)) error {
	if p.json {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return err
		}
		_, err := p.w.Write(cleanJSON(buf.Bytes()))
		return err
	}
	t := &textOut{w: p.w, width: p.width}
	text(t)
	return t.err
}

// textOut is the text view of one result. Its methods clean every string
// they are given.
type textOut struct {
	w     io.Writer
	width int
	err   error
}

func (t *textOut) write(s string) {
	if t.err == nil {
		_, t.err = io.WriteString(t.w, s)
	}
}

// line writes one cleaned line.
func (t *textOut) line(s string) { t.write(Clean(s) + "\n") }

// linef formats and writes one cleaned line.
func (t *textOut) linef(format string, args ...any) { t.line(fmt.Sprintf(format, args...)) }

// blank writes an empty line.
func (t *textOut) blank() { t.write("\n") }

// table starts a table with the given column headers.
func (t *textOut) table(header ...string) *table {
	tb := &table{out: t}
	tb.tw = tabwriter.NewWriter(&tb.buf, 0, 4, 2, ' ', 0)
	tb.row(header...)
	return tb
}

// table writes aligned columns. Cells are cleaned, so none holds a tab or a
// newline that would break the alignment.
type table struct {
	out *textOut
	tw  *tabwriter.Writer
	buf bytes.Buffer
}

// row adds a row of cells.
func (tb *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = Clean(c)
	}
	_, _ = io.WriteString(tb.tw, strings.Join(cells, "\t")+"\n") // into a buffer
}

// flush writes the table out, without the padding after each line's last
// cell.
func (tb *table) flush() {
	if err := tb.tw.Flush(); err != nil && tb.out.err == nil {
		tb.out.err = err
	}
	for _, l := range strings.SplitAfter(tb.buf.String(), "\n") {
		if l != "" {
			tb.out.write(strings.TrimRight(l, " \n") + "\n")
		}
	}
	tb.buf.Reset()
}

// labelWidth is the column where field values start in a detail view.
const labelWidth = 16

// field writes "label   value", the value cleaned and folded to the width
// with continuation lines indented under it.
func (t *textOut) field(label, value string) {
	lines := fold(Clean(value), t.width-labelWidth)
	t.write(fmt.Sprintf("%-*s%s\n", labelWidth, label, lines[0]))
	for _, l := range lines[1:] {
		t.write(strings.Repeat(" ", labelWidth) + l + "\n")
	}
}

// jsonField writes a label and a JSON value pretty-printed and indented
// under it, each line folded to the width; "null" when raw is empty.
func (t *textOut) jsonField(label string, raw json.RawMessage) {
	if len(raw) == 0 || string(raw) == "null" {
		t.field(label, "null")
		return
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		t.field(label, string(raw))
		return
	}
	text := strings.TrimRight(buf.String(), "\n")
	if !strings.Contains(text, "\n") && labelWidth+utf8.RuneCountInString(text) <= t.width {
		t.field(label, text)
		return
	}
	t.line(label)
	indent := label[:len(label)-len(strings.TrimLeft(label, " "))] + "  "
	for _, l := range strings.Split(text, "\n") {
		// Cleaning a JSON line keeps it JSON but for its backslashes, which
		// cleanJSON leaves alone; newlines were split off already.
		for _, f := range fold(string(cleanJSON([]byte(l))), t.width-len(indent)) {
			t.write(indent + f + "\n")
		}
	}
}

// fold splits s into lines of at most width runes (at least 20), breaking
// at the last space when there is one in the second half of the line. It
// returns at least one line.
func fold(s string, width int) []string {
	width = max(width, 20)
	var out []string
	for utf8.RuneCountInString(s) > width {
		cut := byteIndexOfRune(s, width)
		if sp := strings.LastIndexByte(s[:cut], ' '); sp > cut/2 {
			cut = sp + 1
		}
		out = append(out, strings.TrimRight(s[:cut], " "))
		s = s[cut:]
	}
	return append(out, s)
}

// byteIndexOfRune returns the byte offset of the n-th rune of s.
func byteIndexOfRune(s string, n int) int {
	i := 0
	for j := range s {
		if i == n {
			return j
		}
		i++
	}
	return len(s)
}

// truncate shortens s to at most n runes, ending in "..." when cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return s[:byteIndexOfRune(s, n-3)] + "..."
}

// timeText formats a time for text output; "-" for none.
func timeText(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// durationText formats a duration for text output, to the millisecond (the
// microsecond below one).
func durationText(d time.Duration) string {
	if d < time.Millisecond && d > -time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
