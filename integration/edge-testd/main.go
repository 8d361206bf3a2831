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
}

func build(cfg *config.File[section]) *runtime {
	rt := &runtime{greeting: cfg.Section.Greeting}
	for _, ref := range cfg.Section.Allow {
		p, _ := ref.Prefixes(&cfg.Site)
		rt.allow = append(rt.allow, p...)
	}
	return rt
}

func newServer(env daemon.Env, cfg *config.File[section]) (daemon.Service[section], error) {
	ln, err := net.Listen("tcp", cfg.Section.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &server{log: env.Log, listen: cfg.Section.Listen, ln: ln, ready: make(chan struct{})}
	s.cur.Store(build(cfg))
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

func (s *server) Reload(cfg *config.File[section]) error {
	if cfg.Section.Listen != s.listen {
		return fmt.Errorf("testd.listen: changes only on restart")
	}
	s.cur.Store(build(cfg))
	return nil
}

func (s *server) Ready() <-chan struct{} { return s.ready }

func (s *server) Status() any {
	return map[string]any{"greeting": s.cur.Load().greeting, "connections": s.conns.Load(), "listen": s.ln.Addr().String()}
}

func main() {
	os.Exit(daemon.Main(daemon.Spec[section]{
		Name: "testd",
		Defaults: func() section {
			return section{Common: config.Common{Metrics: config.Metrics{Listen: "127.0.0.1:9799"}}, Listen: "0.0.0.0:7000", Greeting: "hello"}
		},
		New: newServer,
	}, os.Args[1:], os.Stdout, os.Stderr))
}
