// Package bench measures the engine against the database's own commit rate
// and prints a table; `acidic bench` runs it.
package bench

import (
	"context"
	"fmt"
	"io"
)

// Main runs the bench command with its arguments and returns the exit code.
func Main(ctx context.Context, url string, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "acidic bench: being written (see issue 6)")
	return 1
}
