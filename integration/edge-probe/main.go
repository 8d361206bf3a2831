// Command edge-probe is the integration suite's traffic tool: it serves
// TCP and UDP ports that answer every connection or datagram with the
// address it came from, and dials them, so that a test sees what NAT and
// the firewall did to a packet from both ends.
//
//	edge-probe serve -tcp :22 -tcp :8080 -udp :5000
//	edge-probe dial [-udp] [-timeout 2s] 192.0.2.1:8080
//	edge-probe burst -n 15 [-timeout 1s] 192.0.2.1:22
//
// A served connection gets one line, "from=<ip> to=<ip:port>". dial prints
// it and exits 0; it exits 3 when the attempt timed out (a drop), 4 when
// it was refused (a reject or a closed port) and 1 on any other error.
// burst makes n connections one after the other and prints each result
// and a count: "ok=10 timeout=5 refused=0".
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// Exit codes of dial.
const (
	exitOK      = 0
	exitError   = 1
	exitUsage   = 2
	exitTimeout = 3
	exitRefused = 4
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: edge-probe serve|dial|burst ...")
		os.Exit(exitUsage)
	}
	switch os.Args[1] {
	case "serve":
		os.Exit(serve(os.Args[2:]))
	case "dial":
		os.Exit(dial(os.Args[2:]))
	case "burst":
		os.Exit(burst(os.Args[2:]))
	}
	fmt.Fprintf(os.Stderr, "edge-probe: unknown mode %q\n", os.Args[1])
	os.Exit(exitUsage)
}

func serve(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var tcp, udp listFlag
	fs.Var(&tcp, "tcp", "TCP address to serve (repeatable)")
	fs.Var(&udp, "udp", "UDP address to serve (repeatable)")
	if fs.Parse(args) != nil || len(tcp)+len(udp) == 0 {
		return exitUsage
	}
	for _, a := range tcp {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			fmt.Fprintln(os.Stderr, "edge-probe:", err)
			return exitError
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				from := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
				fmt.Fprintf(c, "from=%s to=%s\n", from, c.LocalAddr())
				c.Close()
			}
		}()
	}
	for _, a := range udp {
		pc, err := net.ListenPacket("udp", a)
		if err != nil {
			fmt.Fprintln(os.Stderr, "edge-probe:", err)
			return exitError
		}
		go func() {
			buf := make([]byte, 2048)
			for {
				_, addr, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				from := addr.(*net.UDPAddr).AddrPort().Addr().Unmap()
				pc.WriteTo(fmt.Appendf(nil, "from=%s to=%s\n", from, pc.LocalAddr()), addr)
			}
		}()
	}
	fmt.Println("serving")
	select {}
}

// attempt makes one connection (or one UDP exchange) and returns the
// answer and the exit code.
func attempt(network, addr string, timeout time.Duration) (string, int) {
	c, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return classify(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if network == "udp" {
		if _, err := c.Write([]byte("probe\n")); err != nil {
			return classify(err)
		}
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return classify(err)
	}
	return strings.TrimSpace(line), exitOK
}

func classify(err error) (string, int) {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused", exitRefused
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout", exitTimeout
	}
	return err.Error(), exitError
}

func dial(args []string) int {
	fs := flag.NewFlagSet("dial", flag.ContinueOnError)
	udp := fs.Bool("udp", false, "UDP instead of TCP")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait")
	if fs.Parse(args) != nil || fs.NArg() != 1 {
		return exitUsage
	}
	network := "tcp"
	if *udp {
		network = "udp"
	}
	out, code := attempt(network, fs.Arg(0), *timeout)
	fmt.Println(out)
	return code
}

func burst(args []string) int {
	fs := flag.NewFlagSet("burst", flag.ContinueOnError)
	n := fs.Int("n", 10, "connections")
	timeout := fs.Duration("timeout", time.Second, "how long to wait for each")
	if fs.Parse(args) != nil || fs.NArg() != 1 || *n < 1 {
		return exitUsage
	}
	counts := map[int]int{}
	for i := 1; i <= *n; i++ {
		out, code := attempt("tcp", fs.Arg(0), *timeout)
		counts[code]++
		fmt.Printf("%d %s\n", i, out)
	}
	fmt.Printf("ok=%d timeout=%d refused=%d error=%d\n", counts[exitOK], counts[exitTimeout], counts[exitRefused], counts[exitError])
	return exitOK
}
