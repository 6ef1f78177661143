// Command acidic operates an Acidic database: migrate its schema, inspect
// and act on runs, jobs and queues, and measure the engine.
//
//	acidic migrate up
//	acidic queues
//	acidic runs list -state failed
//	acidic runs retry 0b6c…
//	acidic jobs cancel 42
//	acidic bench
//
// Run acidic -h for every command and flag.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/acidic-go/acidic/internal/tools/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
