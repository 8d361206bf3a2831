package lab_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/homeedge/edge/integration/lab"
)

// A test builds the standard lab, starts a daemon on the router and talks
// to it from a lan host. Tests use lab.ForTest(t, lab.Options{}) instead of
// New and Close.
func Example() {
	ctx := context.Background()
	l, err := lab.New(ctx, lab.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	daemon, err := l.Start(lab.NodeRouter, "edge-dns", []string{"edge-dns", "-config", "/tmp/edge.yaml"},
		lab.WithEnv("EDGE_LOG_LEVEL=debug"))
	if err != nil {
		log.Fatal(err)
	}
	if err := daemon.WaitLog(ctx, "serving"); err != nil {
		log.Fatal(err)
	}
	out, err := l.Run(ctx, lab.NodeClient, "dig", "@"+lab.RouterLANAddr4, "nas.home.arpa")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s", out)
	daemon.Stop(5 * time.Second)
}

// A smaller lab: just two outside hosts and the internet between them.
func ExampleTopology_Subset() {
	topo, err := lab.Standard().Subset(lab.NodeInternet, lab.NodeOutsideDE, lab.NodeOutsideUS)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(topo.NodeNames())
	// Output: [internet outside-de outside-us]
}
