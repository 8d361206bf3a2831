package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ProcOption changes how [Lab.Start] runs a process.
type ProcOption func(*procConfig)

type procConfig struct {
	asUser   bool
	uid, gid int
	env      []string // extra KEY=value pairs on top of this process's environment
	dir      string
}

// AsUser runs the process as uid and gid with no supplementary groups
// (through setpriv, inside the namespace).
func AsUser(uid, gid int) ProcOption {
	return func(c *procConfig) {
		c.asUser, c.uid, c.gid = true, uid, gid
	}
}

// WithEnv adds KEY=value pairs to the process's environment, which is
// otherwise this process's own.
func WithEnv(kv ...string) ProcOption {
	return func(c *procConfig) {
		c.env = append(c.env, kv...)
	}
}

// InDir runs the process in directory dir.
func InDir(dir string) ProcOption {
	return func(c *procConfig) {
		c.dir = dir
	}
}

// wrap prefixes argv with what switches user, if asked.
func (c procConfig) wrap(argv []string) []string {
	if !c.asUser {
		return argv
	}
	return append([]string{"setpriv",
		"--reuid=" + strconv.Itoa(c.uid), "--regid=" + strconv.Itoa(c.gid), "--clear-groups", "--"}, argv...)
}

// Proc is a long-lived process started in a lab node by [Lab.Start]. Its
// stdout and stderr go to a log file.
type Proc struct {
	node, name string
	cmd        *exec.Cmd
	logPath    string
	logStart   int64 // offset in the log file where this process's output begins

	done chan struct{} // closed once the process has exited and err is set
	err  error         // result of Wait; written before done is closed
}

// Start runs argv in node as a long-lived process named procName. Its
// stdout and stderr are appended to <logdir>/<node>-<procName>.log (a
// restarted process keeps appending; [Proc.Log] returns only its own part).
// The process runs in its own process group until it exits, [Proc.Stop] is
// called or the lab is closed.
func (l *Lab) Start(node, procName string, argv []string, opts ...ProcOption) (*Proc, error) {
	if l.topo.Node(node) == nil {
		return nil, fmt.Errorf("start %s: no node %q in topology", procName, node)
	}
	if procName == "" || strings.ContainsAny(procName, "/\x00") || procName[0] == '.' {
		return nil, fmt.Errorf("start in %s: process name %q: want a file name without '/', not starting with '.'", node, procName)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("start %s/%s: empty command", node, procName)
	}
	var cfg procConfig
	for _, o := range opts {
		o(&cfg)
	}

	// Hold the lock while starting, so Close either sees this process or
	// Start sees the lab closed.
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("start %s/%s: lab %s is closed", node, procName, l.runID)
	}

	path := filepath.Join(l.logDir, node+"-"+procName+".log")
	logFile, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s/%s: %w", node, procName, err)
	}
	// The child gets its own copy of the descriptor.
	defer logFile.Close()
	start, err := logFile.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("start %s/%s: %w", node, procName, err)
	}

	cmd := exec.Command("ip", l.commandArgs(node, cfg, argv)...)
	l.configure(cmd, cfg)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s/%s: %w", node, procName, err)
	}
	p := &Proc{
		node:     node,
		name:     procName,
		cmd:      cmd,
		logPath:  path,
		logStart: start,
		done:     make(chan struct{}),
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.procs = append(l.procs, p)
	return p, nil
}

// String returns "node/name".
func (p *Proc) String() string { return p.node + "/" + p.name }

// Node returns the node the process runs in.
func (p *Proc) Node() string { return p.node }

// Name returns the process name given to Start.
func (p *Proc) Name() string { return p.name }

// Pid returns the process id (of the command itself: "ip netns exec" and
// setpriv exec it in place).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// LogPath returns the log file the process writes to.
func (p *Proc) LogPath() string { return p.logPath }

// Done returns a channel closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns its exit error, like
// [exec.Cmd.Wait]; it may be called any number of times.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Signal sends sig to the process (not its group). It returns
// os.ErrProcessDone once the process has exited.
func (p *Proc) Signal(sig os.Signal) error {
	select {
	case <-p.done:
		return os.ErrProcessDone
	default:
	}
	return p.cmd.Process.Signal(sig)
}

// Stop sends SIGTERM to the process group, and SIGKILL if the process has
// not exited after timeout. It returns nil once the process is gone,
// whatever its exit status (see Wait), and an error only if it survived
// SIGKILL.
func (p *Proc) Stop(timeout time.Duration) error {
	if p.waitFor(0) {
		return nil
	}
	p.signalGroup(syscall.SIGTERM)
	if p.waitFor(timeout) {
		return nil
	}
	p.signalGroup(syscall.SIGKILL)
	if p.waitFor(killTimeout) {
		return nil
	}
	return fmt.Errorf("stop %s (pid %d): still running after SIGKILL", p, p.Pid())
}

func (p *Proc) signalGroup(sig syscall.Signal) {
	// The leader through os.Process, which cannot hit a reused pid, then
	// the rest of its group.
	p.cmd.Process.Signal(sig)
	killGroup(p.Pid(), sig)
}

// waitFor reports whether the process exits within d.
func (p *Proc) waitFor(d time.Duration) bool {
	if d <= 0 {
		select {
		case <-p.done:
			return true
		default:
			return false
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// Log returns what the process has written to stdout and stderr so far.
func (p *Proc) Log() string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return fmt.Sprintf("(log of %s unreadable: %v)", p, err)
	}
	defer f.Close()
	if _, err := f.Seek(p.logStart, io.SeekStart); err != nil {
		return fmt.Sprintf("(log of %s unreadable: %v)", p, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(log of %s unreadable: %v)", p, err)
	}
	return string(data)
}

// WaitLog waits until the process's log contains substr, e.g. a "listening"
// line. It fails when ctx ends or the process exits first.
func (p *Proc) WaitLog(ctx context.Context, substr string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if strings.Contains(p.Log(), substr) {
			return nil
		}
		select {
		case <-p.done:
			if strings.Contains(p.Log(), substr) {
				return nil
			}
			return fmt.Errorf("%s exited (%v) before logging %q; log:\n%s", p, p.err, substr, tail(p.Log(), 20))
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for %q: %w; log:\n%s", p, substr, context.Cause(ctx), tail(p.Log(), 20))
		case <-tick.C:
		}
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines before]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
