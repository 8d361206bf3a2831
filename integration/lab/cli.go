package lab

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

const cliUsage = `usage: edge-lab <command> [arguments]

Commands:
  up [-logdir DIR]       bring up the standard topology as a persistent lab
                         and print its run id, namespaces and addresses
  down [RUNID...]        tear down the named labs (default: every persistent lab)
  ls                     list labs: run id, owner, age, live or not
  exec [-lab RUNID] NODE [--] CMD [ARG...]
                         run CMD in NODE of the persistent lab (or of lab
                         RUNID) with this terminal's stdin, stdout and stderr
  clean                  remove the leftovers of dead runs

Exit status: 0 ok, 1 failure, 2 usage; exec exits with CMD's status.
`

// usageError is a mistake in the command line (exit status 2).
type usageError string

func (e usageError) Error() string { return string(e) }

// cli holds what the edge-lab commands read and write, so tests can point
// them at fake directories, a fake clock and buffers.
type cli struct {
	state  state
	now    func() time.Time
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// Main runs the edge-lab command line args (without the program name) and
// returns the exit status: 0 ok, 1 failure, 2 usage; "exec" returns the
// status of the command it ran.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{state: defaultState(), now: time.Now, stdin: stdin, stdout: stdout, stderr: stderr}
	return c.main(ctx, args)
}

func (c *cli) main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, cliUsage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "up":
		err = c.up(ctx, rest)
	case "down":
		err = c.down(ctx, rest)
	case "ls":
		err = c.ls(rest)
	case "exec":
		var status int
		status, err = c.exec(rest)
		if err == nil {
			return status
		}
	case "clean":
		err = c.clean(ctx, rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(c.stdout, cliUsage)
		return 0
	default:
		err = usageError(fmt.Sprintf("unknown command %q", cmd))
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(c.stdout, cliUsage)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "edge-lab: %v\nrun \"edge-lab help\" for usage\n", err)
		return 2
	default:
		fmt.Fprintf(c.stderr, "edge-lab: %v\n", err)
		return 1
	}
}

// flags returns a flag set for command name whose parse errors are usage
// errors.
func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("edge-lab "+name, flag.ContinueOnError)
	// main reports parse errors and prints the usage, once.
	fs.SetOutput(io.Discard)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError(err.Error())
	}
	return nil
}

func (c *cli) up(ctx context.Context, args []string) error {
	fs := c.flags("up")
	logDir := fs.String("logdir", "", "directory for the lab's log directory (default: the system temp dir)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("up takes no arguments")
	}
	l, err := New(ctx, Options{
		Persistent: true,
		LogDir:     *logDir,
		Logf:       func(format string, args ...any) { fmt.Fprintf(c.stderr, format+"\n", args...) },
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "lab %s is up (persistent: remove it with \"edge-lab down %s\"; logs in %s)\n\n", l.RunID(), l.RunID(), l.LogDir())
	return writeNodeTable(c.stdout, l.RunID(), l.Topology())
}

// writeNodeTable prints one row per interface with addresses: node,
// namespace, interface, addresses.
func writeNodeTable(w io.Writer, runID string, t Topology) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tNAMESPACE\tINTERFACE\tADDRESSES")
	for _, n := range t.Nodes {
		node, ns := n.Name, NamespaceName(runID, n.Name)
		ifaces := t.Ifaces(n.Name)
		if len(ifaces) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\n", node, ns)
		}
		for _, ifc := range ifaces {
			var as []string
			for _, p := range ifc.Addrs {
				as = append(as, p.String())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", node, ns, ifc.Name, strings.Join(as, " "))
			node, ns = "", ""
		}
	}
	return tw.Flush()
}

func (c *cli) down(ctx context.Context, args []string) error {
	fs := c.flags("down")
	if err := parse(fs, args); err != nil {
		return err
	}
	for _, id := range fs.Args() {
		if !validRunID(id) {
			return usageError(fmt.Sprintf("%q is not a run id (%d hex digits, see edge-lab ls)", id, runIDLen))
		}
	}
	unlock, err := c.state.lock()
	if err != nil {
		return err
	}
	defer unlock()
	all, err := c.state.runs()
	if err != nil {
		return err
	}

	var targets []run
	if fs.NArg() == 0 {
		for _, r := range all {
			if r.Marker != nil && r.Marker.persistent() {
				targets = append(targets, r)
			}
		}
		if len(targets) == 0 {
			fmt.Fprintln(c.stdout, "no persistent lab")
			return nil
		}
	}
	for _, id := range fs.Args() {
		i := slices.IndexFunc(all, func(r run) bool { return r.ID == id })
		if i < 0 {
			return fmt.Errorf("no lab %s (see edge-lab ls)", id)
		}
		r := all[i]
		if m := r.Marker; m != nil && !m.persistent() && c.state.alive(m.OwnerPID, m.OwnerStart) {
			return fmt.Errorf("lab %s belongs to running process %d, which removes it when done", id, m.OwnerPID)
		}
		targets = append(targets, r)
	}

	var errs []error
	for _, r := range targets {
		if err := c.state.removeRun(ctx, r, false); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(c.stdout, "removed lab %s\n", r.ID)
	}
	return errors.Join(errs...)
}

func (c *cli) ls(args []string) error {
	fs := c.flags("ls")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("ls takes no arguments")
	}
	all, err := c.state.runs()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUNID\tOWNER\tAGE\tLIVE\tNAMESPACES\tLOGS")
	for _, r := range all {
		owner, age, logs := "-", "-", "-"
		switch m := r.Marker; {
		case r.MarkerErr != nil:
			owner = "bad marker: " + r.MarkerErr.Error()
		case m == nil:
			owner = "no marker"
		case m.persistent():
			owner = "persistent"
		default:
			owner = "pid " + strconv.Itoa(m.OwnerPID)
		}
		if m := r.Marker; m != nil {
			age = c.now().Sub(m.Started).Truncate(time.Second).String()
			logs = m.LogDir
		}
		live := "no"
		if r.live(c.state.alive) {
			live = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", r.ID, owner, age, live, len(r.Namespaces), logs)
	}
	return tw.Flush()
}

func (c *cli) exec(args []string) (int, error) {
	fs := c.flags("exec")
	runID := fs.String("lab", "", "run id of the lab (default: the only persistent lab)")
	if err := parse(fs, args); err != nil {
		return 0, err
	}
	rest := fs.Args()
	if len(rest) > 1 && rest[1] == "--" {
		rest = append(rest[:1:1], rest[2:]...)
	}
	if len(rest) < 2 {
		return 0, usageError("exec needs a node and a command: edge-lab exec [-lab RUNID] NODE -- CMD [ARG...]")
	}
	node, argv := rest[0], rest[1:]

	r, err := c.pickRun(*runID)
	if err != nil {
		return 0, err
	}
	ns := NamespaceName(r.ID, node)
	if !slices.Contains(r.Namespaces, ns) {
		var nodes []string
		for _, n := range r.Namespaces {
			_, name, _ := parseNamespaceName(n)
			nodes = append(nodes, name)
		}
		return 0, fmt.Errorf("lab %s has no node %q (have %s)", r.ID, node, strings.Join(nodes, ", "))
	}

	// No context: the command shares the terminal and gets its signals
	// itself; an interrupted edge-lab waits for it rather than killing it.
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.stdin, c.stdout, c.stderr
	err = cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() > 0:
		return exitErr.ExitCode(), nil
	}
	return 0, fmt.Errorf("exec in %s: %w", node, err)
}

// pickRun returns lab id, or the only persistent lab when id is empty.
func (c *cli) pickRun(id string) (run, error) {
	all, err := c.state.runs()
	if err != nil {
		return run{}, err
	}
	if id != "" {
		if !validRunID(id) {
			return run{}, usageError(fmt.Sprintf("-lab %q is not a run id (%d hex digits, see edge-lab ls)", id, runIDLen))
		}
		for _, r := range all {
			if r.ID == id {
				return r, nil
			}
		}
		return run{}, fmt.Errorf("no lab %s (see edge-lab ls)", id)
	}
	var ids []string
	var found run
	for _, r := range all {
		if r.Marker != nil && r.Marker.persistent() {
			ids = append(ids, r.ID)
			found = r
		}
	}
	switch len(ids) {
	case 0:
		return run{}, errors.New("no persistent lab (start one with edge-lab up, or name one with -lab)")
	case 1:
		return found, nil
	}
	return run{}, fmt.Errorf("%d persistent labs (%s): choose one with -lab", len(ids), strings.Join(ids, ", "))
}

func (c *cli) clean(ctx context.Context, args []string) error {
	fs := c.flags("clean")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("clean takes no arguments")
	}
	unlock, err := c.state.lock()
	if err != nil {
		return err
	}
	defer unlock()
	removed, err := c.state.removeDeadRuns(ctx)
	for _, id := range removed {
		fmt.Fprintf(c.stdout, "removed dead run %s\n", id)
	}
	if err == nil && len(removed) == 0 {
		fmt.Fprintln(c.stdout, "nothing to clean")
	}
	return err
}
