package health_test

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/lb/health"
)

// A daemon keeps one Checker, hands it every target at start and on each
// reload, and asks Up on its hot path.
func ExampleChecker() {
	// A port on which nothing listens.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()

	c := health.New(health.Options{Namespace: "edge_example"})
	defer c.Close()
	changes := make(chan health.Change, 1)
	c.Subscribe(func(ch health.Change) { changes <- ch })

	key := "www.example.net/A/127.0.0.1"
	// Unknown keys, like targets whose first check has not finished,
	// count as up.
	fmt.Println("before Set, up:", c.Up(key))
	c.Set([]health.Target{{
		Key:  key,
		Addr: netip.MustParseAddr("127.0.0.1"),
		Check: health.Check{
			Type: "tcp", Port: port,
			Interval: config.Duration(time.Second), Timeout: config.Duration(500 * time.Millisecond),
			Rise: 2, Fall: 1,
		},
	}})
	ch := <-changes
	fmt.Printf("%s up: %v (%s)\n", ch.Key, ch.Up, ch.Reason)
	fmt.Println("now up:", c.Up(key))
	// Output:
	// before Set, up: true
	// www.example.net/A/127.0.0.1 up: false (connect: connection refused)
	// now up: false
}
