// Command edgectl is the operator's CLI for the edge daemons.
package main

import (
	"os"

	"github.com/homeedge/edge/cmd/edgectl/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
