// Command edge-lab brings up, lists, enters and tears down the
// network-namespace lab of package integration/lab by hand, for demos and
// for poking at a topology outside a test. Run "edge-lab help" for usage.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/homeedge/edge/integration/lab"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := lab.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
