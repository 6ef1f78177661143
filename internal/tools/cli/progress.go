package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/term"
)

// progress reports a bulk operation on stderr: a bar redrawn in place when
// stderr is a terminal, otherwise a plain count every countEvery items
// (and none for operations smaller than that).
type progress struct {
	w     io.Writer
	tty   bool
	what  string // "retrying runs"
	total int
	done  int
	drawn time.Time // last redraw of the bar
	lines int       // plain counts printed
}

const (
	countEvery = 100
	barWidth   = 30
	redrawGap  = 100 * time.Millisecond
)

func newProgress(w io.Writer, what string, total int) *progress {
	return &progress{w: w, tty: isTerminal(w), what: what, total: total}
}

// add counts n more items done.
func (p *progress) add(n int) {
	before := p.done
	p.done += n
	if p.tty {
		if time.Since(p.drawn) >= redrawGap {
			p.draw()
		}
		return
	}
	if p.done/countEvery > before/countEvery && p.done < p.total {
		p.count()
	}
}

// finish draws the final state and ends the bar's line.
func (p *progress) finish() {
	switch {
	case p.tty && p.total > 0:
		p.draw()
		fmt.Fprint(p.w, "\n")
	case !p.tty && p.lines > 0:
		p.count()
	}
}

func (p *progress) draw() {
	p.drawn = time.Now()
	filled := barWidth
	if p.total > 0 {
		filled = min(barWidth, p.done*barWidth/p.total)
	}
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", barWidth-filled)
	// \r and erase-line are the only control bytes the command writes: its
	// own, to a terminal.
	fmt.Fprintf(p.w, "\r\x1b[K%s [%s] %d/%d", Clean(p.what), bar, p.done, p.total)
}

func (p *progress) count() {
	p.lines++
	fmt.Fprintf(p.w, "%s: %d/%d\n", Clean(p.what), p.done, p.total)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// terminalWidth returns the width of the terminal w is, or defaultWidth.
func terminalWidth(w io.Writer) int {
	if f, ok := w.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols >= 40 {
			return cols
		}
	}
	return defaultWidth
}
