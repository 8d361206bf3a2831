package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrUnavailable is wrapped by the errors of [New] when the machine cannot
// host a lab at all: not root, no iproute2, or no network namespaces.
var ErrUnavailable = errors.New("lab unavailable")

// DefaultStopTimeout is how long Close waits for a process to exit after
// SIGTERM before it sends SIGKILL.
const DefaultStopTimeout = 3 * time.Second

// Options configures [New]. The zero value builds the standard topology.
type Options struct {
	// Topology is the lab to build; empty means Standard().
	Topology Topology
	// LogDir is the directory under which the run's log directory
	// edge-lab-<runid> is made; empty means os.TempDir().
	LogDir string
	// KeepLogs keeps the run's log directory after Close.
	KeepLogs bool
	// Persistent marks the lab as owned by no process (owner pid 0): it
	// survives its creator and only "edge-lab down" (or Close) removes it.
	Persistent bool
	// StopTimeout overrides DefaultStopTimeout.
	StopTimeout time.Duration
	// Logf, if set, receives notes such as removed leftovers of dead runs.
	Logf func(format string, args ...any)
}

// Lab is a running topology of network namespaces. Its methods are safe for
// concurrent use.
type Lab struct {
	runID   string
	topo    Topology
	logDir  string
	opts    Options
	state   state
	started time.Time

	mu       sync.Mutex
	procs    []*Proc // every process Start made, in start order; guarded by mu
	closed   bool    // guarded by mu
	keepLogs bool    // guarded by mu; set by ForTest when a test failed
}

// New builds the lab described by opts. It first removes the leftovers of
// dead runs (never a lab whose owner still runs, nor a persistent one). On
// error nothing of the new lab is left behind.
func New(ctx context.Context, opts Options) (*Lab, error) {
	topo := opts.Topology.Clone()
	if len(topo.Nodes) == 0 {
		topo = Standard()
	}
	if err := topo.Validate(); err != nil {
		return nil, fmt.Errorf("lab topology: %w", err)
	}
	if err := preflight(); err != nil {
		return nil, err
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	l := &Lab{topo: topo, opts: opts, state: defaultState(), started: time.Now().UTC().Truncate(time.Second)}
	if err := l.claim(ctx, logf); err != nil {
		return nil, err
	}

	if err := l.build(ctx); err != nil {
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, fmt.Errorf("build lab %s: %w", l.runID, err)
	}
	if opts.Persistent {
		if err := l.state.writeMarker(l.marker(0)); err != nil {
			return nil, errors.Join(fmt.Errorf("lab marker: %w", err), l.Close())
		}
	}
	return l, nil
}

// claim removes the leftovers of dead runs, then picks a run id and writes
// its marker, all under the machine-wide lab lock. The marker names this
// process as owner while the lab is built, so a crash half-way is cleaned
// up by the next New even for a lab meant to be persistent.
func (l *Lab) claim(ctx context.Context, logf func(string, ...any)) error {
	unlock, err := l.state.lock()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer unlock()

	removed, err := l.state.removeDeadRuns(ctx)
	for _, id := range removed {
		logf("lab: removed leftovers of dead run %s", id)
	}
	if err != nil {
		// Our run id is unique, so a leftover that resists removal does
		// not stop this lab; say so and carry on.
		logf("lab: %v", err)
	}

	if l.runID, err = l.state.newRunID(); err != nil {
		return err
	}
	parent := l.opts.LogDir
	if parent == "" {
		parent = os.TempDir()
	}
	if parent, err = filepath.Abs(parent); err != nil {
		return fmt.Errorf("lab log dir: %w", err)
	}
	l.logDir = filepath.Join(parent, logDirStem+l.runID)
	if err := os.MkdirAll(l.logDir, 0o755); err != nil {
		return fmt.Errorf("lab log dir: %w", err)
	}
	if err := l.state.writeMarker(l.marker(os.Getpid())); err != nil {
		os.RemoveAll(l.logDir)
		return fmt.Errorf("lab marker: %w", err)
	}
	return nil
}

func (l *Lab) marker(owner int) *marker {
	m := &marker{
		RunID:    l.runID,
		Nodes:    l.topo.NodeNames(),
		OwnerPID: owner,
		Started:  l.started,
		LogDir:   l.logDir,
		KeepLogs: l.opts.KeepLogs,
	}
	if owner != 0 {
		m.OwnerStart = processStart(owner)
	}
	return m
}

// preflight checks what every lab needs before touching anything.
func preflight() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root to create network namespaces", ErrUnavailable)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: ip (iproute2) not found: %v", ErrUnavailable, err)
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return fmt.Errorf("%w: kernel without network namespaces: %v", ErrUnavailable, err)
	}
	return nil
}

// build creates the namespaces, then the veth pairs (directly inside the
// namespaces, so no interface ever appears in the host's namespace), then
// configures each namespace in one ip batch.
func (l *Lab) build(ctx context.Context) error {
	for i, n := range l.topo.Nodes {
		ns := l.NS(n.Name)
		if _, err := ipCmd(ctx, nil, "netns", "add", ns); err != nil {
			if i == 0 {
				return fmt.Errorf("%w: network namespaces do not work here: %v", ErrUnavailable, err)
			}
			return err
		}
		// Set before any interface exists, so every interface inherits
		// "default" and IPv6 addresses are usable at once.
		sysctls := []string{
			"net.ipv6.conf.all.accept_dad=0",
			"net.ipv6.conf.default.accept_dad=0",
		}
		if n.Forwarding {
			sysctls = append(sysctls,
				"net.ipv4.ip_forward=1",
				"net.ipv6.conf.all.forwarding=1",
				"net.ipv6.conf.default.forwarding=1")
		}
		args := append([]string{"netns", "exec", ns, "sysctl", "-q", "-w"}, sysctls...)
		if _, err := ipCmd(ctx, nil, args...); err != nil {
			return err
		}
	}
	for _, link := range l.topo.Links {
		if _, err := ipCmd(ctx, nil, "link", "add", link.A.Iface, "netns", l.NS(link.A.Node), "type", "veth",
			"peer", "name", link.B.Iface, "netns", l.NS(link.B.Node)); err != nil {
			return err
		}
	}
	for _, n := range l.topo.Nodes {
		script := configScript(l.topo, n)
		if _, err := ipCmd(ctx, strings.NewReader(script), "-n", l.NS(n.Name), "-batch", "-"); err != nil {
			return fmt.Errorf("configure %s: %w\nscript:\n%s", n.Name, err, script)
		}
	}
	return nil
}

// configScript returns the "ip -batch" lines that configure node n:
// loopback, bridges, link endpoints with their addresses, then routes.
func configScript(t Topology, n Node) string {
	var b strings.Builder
	line := func(args ...string) { b.WriteString(strings.Join(args, " ") + "\n") }
	addAddrs := func(dev string, ps []netip.Prefix) {
		for _, p := range ps {
			if p.Addr().Is6() {
				line("address", "add", p.String(), "dev", dev, "nodad")
			} else {
				line("address", "add", p.String(), "dev", dev)
			}
		}
	}

	line("link", "set", "lo", "up")
	for _, br := range n.Bridges {
		line("link", "add", br.Name, "type", "bridge", "mcast_snooping", "0")
		addAddrs(br.Name, br.Addrs)
		line("link", "set", br.Name, "up")
	}
	for _, link := range t.Links {
		for _, ep := range []Endpoint{link.A, link.B} {
			if ep.Node != n.Name {
				continue
			}
			if ep.Bridge != "" {
				line("link", "set", ep.Iface, "master", ep.Bridge)
			}
			addAddrs(ep.Iface, ep.Addrs)
			line("link", "set", ep.Iface, "up")
		}
	}
	for _, r := range n.Routes {
		line("route", "add", r.Dst.String(), "via", r.Via.String())
	}
	return b.String()
}

// ipCmd runs ip (iproute2) in the host namespace with args, feeding it
// stdin if set, and returns its combined output.
func ipCmd(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// RunID returns the run id, six hex digits unique on this machine.
func (l *Lab) RunID() string { return l.runID }

// LogDir returns the directory that holds the logs of started processes.
func (l *Lab) LogDir() string { return l.logDir }

// Topology returns a copy of the lab's topology.
func (l *Lab) Topology() Topology { return l.topo.Clone() }

// NS returns the namespace name of node. It panics if the lab has no such
// node: that is a bug in the test, not a condition to handle.
func (l *Lab) NS(node string) string {
	l.mustHave(node)
	return NamespaceName(l.runID, node)
}

// Addr returns the first address of family f on node: for the standard
// router that is its wan address (see [Topology.Ifaces] for the order). It
// panics if node has no such address.
func (l *Lab) Addr(node string, f Family) netip.Addr {
	l.mustHave(node)
	a, ok := l.topo.Addr(node, f)
	if !ok {
		panic(fmt.Sprintf("lab: node %q has no %v address", node, f))
	}
	return a
}

// IfaceAddr returns the first address of family f on interface iface of
// node, e.g. IfaceAddr(NodeRouter, IfaceLAN, IPv4). It panics if there is
// none.
func (l *Lab) IfaceAddr(node, iface string, f Family) netip.Addr {
	l.mustHave(node)
	a, ok := l.topo.IfaceAddr(node, iface, f)
	if !ok {
		panic(fmt.Sprintf("lab: %s/%s has no %v address", node, iface, f))
	}
	return a
}

func (l *Lab) mustHave(node string) {
	if l.topo.Node(node) == nil {
		panic(fmt.Sprintf("lab: no node %q in topology (have %s)", node, strings.Join(l.topo.NodeNames(), ", ")))
	}
}

// Command returns a command that runs name with args inside node's
// namespace (through "ip netns exec"). It panics if node is unknown.
func (l *Lab) Command(ctx context.Context, node, name string, args ...string) *exec.Cmd {
	return l.command(ctx, node, procConfig{}, append([]string{name}, args...))
}

func (l *Lab) command(ctx context.Context, node string, cfg procConfig, argv []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", l.commandArgs(node, cfg, argv)...)
	l.configure(cmd, cfg)
	// Do not hang on a grandchild that keeps the output pipe open.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// commandArgs returns the arguments of ip that run argv in node.
func (l *Lab) commandArgs(node string, cfg procConfig, argv []string) []string {
	return append([]string{"netns", "exec", l.NS(node)}, cfg.wrap(argv)...)
}

func (l *Lab) configure(cmd *exec.Cmd, cfg procConfig) {
	if len(cfg.env) > 0 {
		cmd.Env = append(os.Environ(), cfg.env...)
	}
	cmd.Dir = cfg.dir
}

// Run runs name with args in node and returns the combined output. The
// error names the node and the command and includes the output.
func (l *Lab) Run(ctx context.Context, node, name string, args ...string) ([]byte, error) {
	return l.run(ctx, node, procConfig{}, append([]string{name}, args...))
}

// RunAs is Run as user uid and group gid, with no supplementary groups.
func (l *Lab) RunAs(ctx context.Context, node string, uid, gid int, name string, args ...string) ([]byte, error) {
	cfg := procConfig{uid: uid, gid: gid, asUser: true}
	return l.run(ctx, node, cfg, append([]string{name}, args...))
}

func (l *Lab) run(ctx context.Context, node string, cfg procConfig, argv []string) ([]byte, error) {
	out, err := l.command(ctx, node, cfg, argv).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("in %s: %s: %w\n%s", node, strings.Join(argv, " "), err, bytes.TrimRight(out, "\n"))
	}
	return out, nil
}

// Procs returns the processes started with Start, in start order.
func (l *Lab) Procs() []*Proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Proc(nil), l.procs...)
}

// Close stops every process the lab started (SIGTERM, then SIGKILL after
// the stop timeout), kills whatever else is left in its namespaces, and
// deletes the namespaces, the marker and, unless KeepLogs, the logs.
// Calling it again does nothing.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs := l.procs
	keepLogs := l.keepLogs || l.opts.KeepLogs
	l.mu.Unlock()

	var (
		errMu sync.Mutex
		errs  []error
	)
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() {
			if err := p.Stop(l.opts.StopTimeout); err != nil {
				errMu.Lock()
				errs = append(errs, err)
				errMu.Unlock()
			}
		})
	}
	wg.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var namespaces []string
	for _, n := range l.topo.Nodes {
		namespaces = append(namespaces, l.NS(n.Name))
	}
	r := run{ID: l.runID, Marker: l.marker(0), Namespaces: namespaces}
	if err := l.state.removeRun(ctx, r, keepLogs); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// keepLogsOnClose makes Close keep the log directory.
func (l *Lab) keepLogsOnClose() {
	l.mu.Lock()
	l.keepLogs = true
	l.mu.Unlock()
}
