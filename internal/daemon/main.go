package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/suite"
)

// Exit codes of every daemon.
const (
	ExitOK = 0
	// ExitFailure is a failure while running.
	ExitFailure = 1
	// ExitUsage is a bad command line.
	ExitUsage = 2
	// ExitConfig is a config that does not load (sysexits EX_CONFIG), so
	// that systemd's RestartPreventExitStatus=78 stops a restart loop.
	ExitConfig = 78
)

// Main runs a daemon from its command line (os.Args[1:]) and returns the
// exit code: cmd/<daemon>/main.go is `os.Exit(daemon.Main(spec, ...))`.
func Main[T any](spec Spec[T], args []string, stdout, stderr io.Writer) int {
	name := "edge-" + spec.Name
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", config.DefaultPath, "config file (YAML or JSON)")
	check := fs.Bool("check", false, "load and validate the config (and, for some daemons, build it dry), print it normalized, and exit")
	version := fs.Bool("version", false, "print the version and exit")
	var cleanup *bool
	if spec.Cleanup != nil {
		cleanup = fs.Bool("cleanup", false, "remove the kernel state this daemon created, and exit")
	}
	var render *bool
	if spec.Render != nil {
		render = fs.Bool("render", false, "print what the daemon would program from the config (for loading at boot), and exit")
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s [flags]\n\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", name, fs.Arg(0))
		return ExitUsage
	}

	switch {
	case *version:
		fmt.Fprintf(stdout, "%s %s\n", name, suite.BuildVersion())
		return ExitOK
	case *check:
		cfg, err := config.Load(*cfgPath, spec.Name, spec.Defaults)
		if err != nil {
			printConfigErrors(stderr, name, err)
			return ExitConfig
		}
		if spec.Check != nil {
			if err := spec.Check(cfg); err != nil {
				return exitCode(stderr, name, err)
			}
		}
		out, err := cfg.Normalized()
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return ExitFailure
		}
		stdout.Write(out)
		return ExitOK
	case render != nil && *render:
		cfg, err := config.Load(*cfgPath, spec.Name, spec.Defaults)
		if err == nil {
			if err = spec.Render(stdout, cfg); err != nil && !errors.As(err, new(config.Errors)) {
				err = fmt.Errorf("render: %w", err)
			}
		}
		return exitCode(stderr, name, err)
	case cleanup != nil && *cleanup:
		// Cleanup must work even when the config no longer loads (it runs
		// after a crash): it gets nil then, and removes what it can.
		cfg, err := config.Load(*cfgPath, spec.Name, spec.Defaults)
		if err != nil {
			printConfigErrors(stderr, name, err)
			fmt.Fprintf(stderr, "%s: cleaning up with defaults\n", name)
			cfg = nil
		}
		log := slog.New(slog.NewTextHandler(stderr, nil)).With("daemon", spec.Name)
		if err := spec.Cleanup(context.Background(), log, cfg); err != nil {
			fmt.Fprintf(stderr, "%s: cleanup: %v\n", name, err)
			return ExitFailure
		}
		return ExitOK
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return exitCode(stderr, name, Run(ctx, spec, Options{ConfigPath: *cfgPath}))
}

// exitCode reports err, if any, and returns the exit code for it: config
// errors one per line and ExitConfig, others ExitFailure.
func exitCode(stderr io.Writer, name string, err error) int {
	var cerr config.Errors
	switch {
	case errors.As(err, &cerr):
		printConfigErrors(stderr, name, err)
		return ExitConfig
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitFailure
	}
	return ExitOK
}

func printConfigErrors(w io.Writer, name string, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintf(w, "%s\n", e)
		}
		fmt.Fprintf(w, "%s: config has %d error(s)\n", name, len(errs))
		return
	}
	fmt.Fprintf(w, "%s: %v\n", name, err)
}
