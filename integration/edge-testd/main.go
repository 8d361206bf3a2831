// Command edge-testd is the integration suite's fixture daemon: the
// smallest real daemon on internal/daemon. It answers every TCP connection
// on its listen address with one line, its greeting, so a test can see
// which config is live. It stands in for the runtime contract until every
// real daemon has its own end-to-end test, and stays as the runner's
// reference user.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/daemon"
)

// section is the config section "testd".
type section struct {
	config.Common `yaml:",inline"`
	// Listen is the TCP address that answers with the greeting.
	Listen string `yaml:"listen"`
	// Greeting is the line every connection gets.
	Greeting string `yaml:"greeting"`
	// Allow limits who gets an answer; empty means everyone.
	Allow []config.NetRef `yaml:"allow"`
}

func (s *section) Validate(c *config.Checker) {
	if _, err := netip.ParseAddrPort(s.Listen); err != nil {
		c.Key("listen").Errorf("invalid address %q; write host:port such as 0.0.0.0:7000", s.Listen)
	}
	if s.Greeting == "" {
		c.Key("greeting").Errorf("required")
	}
}

// runtime is what a config builds; a reload swaps it whole.
type runtime struct {
	greeting string
	allow    []netip.Prefix
	// generation is the config generation the runner committed it as.
	generation int64
}

type server struct {
	log *slog.Logger
	// listen is the configured address; the listener's own may read
	// differently ("[::]:7000" for "0.0.0.0:7000").
	listen string
	ln     net.Listener
	cur    atomic.Pointer[runtime]
	ready  chan struct{}
	conns  atomic.Int64
	wg     sync.WaitGroup
	faults *daemon.Faults
}

func build(cfg *config.File[section]) *runtime {
	rt := &runtime{greeting: cfg.Section.Greeting}
	for _, ref := range cfg.Section.Allow {
		p, _ := ref.Prefixes(&cfg.Site)
		rt.allow = append(rt.allow, p...)
	}
	return rt
}

// newServer binds the listener, then prepares and commits the first
// config as a reload would; a failure releases the listener.
func newServer(env daemon.Env, cfg *config.File[section]) (daemon.Service[section], error) {
	if err := env.Faults.Step("listen"); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Section.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &server{log: env.Log, listen: cfg.Section.Listen, ln: ln, ready: make(chan struct{}), faults: env.Faults}
	c, err := s.Prepare(cfg, daemon.Request{Reason: "start"})
	if err != nil {
		ln.Close()
		return nil, err
	}
	c.Apply(1)
	return s, nil
}

func (s *server) Run(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	close(s.ready)
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				s.wg.Wait()
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			s.log.Warn("accept", "err", err)
			continue
		}
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *server) serve(c net.Conn) {
	defer s.wg.Done()
	defer c.Close()
	rt := s.cur.Load()
	if len(rt.allow) > 0 {
		ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
		ok := false
		for _, p := range rt.allow {
			ok = ok || p.Contains(ap.Addr().Unmap())
		}
		if !ok {
			return
		}
	}
	s.conns.Add(1)
	fmt.Fprintf(c, "%s\n", rt.greeting)
}

// Prepare implements daemon.Service: the listener is restart-only, the
// rest is a new runtime swapped in by the commit.
func (s *server) Prepare(cfg *config.File[section], _ daemon.Request) (daemon.Change, error) {
	if err := s.faults.Step("check listen"); err != nil {
		return daemon.Change{}, err
	}
	if cfg.Section.Listen != s.listen {
		return daemon.Change{}, fmt.Errorf("testd.listen: changes only on restart")
	}
	if err := s.faults.Step("build"); err != nil {
		return daemon.Change{}, err
	}
	rt := build(cfg)
	return daemon.Change{Commit: func(gen int64) {
		rt.generation = gen
		s.cur.Store(rt)
	}}, nil
}

func (s *server) Ready() <-chan struct{} { return s.ready }

func (s *server) Status() any {
	rt := s.cur.Load()
	return map[string]any{"greeting": rt.greeting, "generation": rt.generation, "connections": s.conns.Load(), "listen": s.ln.Addr().String()}
}

var spec = daemon.Spec[section]{
	Name: "testd",
	Defaults: func() section {
		return section{Common: config.Common{Metrics: config.Metrics{Listen: "127.0.0.1:9799"}}, Listen: "0.0.0.0:7000", Greeting: "hello"}
	},
	New: newServer,
}

func main() {
	os.Exit(daemon.Main(spec, os.Args[1:], os.Stdout, os.Stderr))
}
