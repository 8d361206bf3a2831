package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// subcommand is one word under a command (peer add, fw ban): what help
// prints and what shell completion offers.
type subcommand struct {
	name    string
	aliases []string
	args    string
	summary string
	flags   []flagHelp
}

type flagHelp struct {
	name    string // "--pubkey KEY"
	summary string
}

// word is the flag's name without its value ("--pubkey").
func (f flagHelp) word() string { w, _, _ := strings.Cut(f.name, " "); return w }

var qrFlags = []flagHelp{
	{"--qr", "print the config as a QR code for the WireGuard app"},
	{"--qr-png FILE", "write the config as a QR code PNG to FILE (mode 0600)"},
}

// subcommands are the words each command takes, in the order help lists
// them.
var subcommands = map[string][]subcommand{
	"record": {
		{name: "ls", aliases: []string{"list"}, args: "[ZONE]", summary: "list the run-time and configured records, of one zone or all"},
		{name: "add", args: "NAME TYPE VALUE", summary: "add a run-time record (e.g. record add nas.home.arpa A 192.168.1.10)",
			flags: []flagHelp{{"--ttl DURATION", "the record's TTL, such as 300, 5m or 1h (default: the zone's)"}}},
		{name: "rm", aliases: []string{"remove", "del"}, args: "NAME [TYPE [VALUE]]", summary: "remove run-time records: all of NAME, of one type, or one"},
	},
	"peer": {
		{name: "add", args: "NAME", summary: "add a WireGuard peer and print its client config (with a generated key, shown once)",
			flags: append([]flagHelp{
				{"--pubkey KEY", "the client's public key; the client keeps its private key and the config has none"},
				{"--psk", "add a preshared key"},
				{"--full-tunnel", "send all the client's traffic through the tunnel"},
				{"--expires DURATION", "how long the peer may connect, such as 30d"},
				{"--interface IF", "the WireGuard interface (default: the first)"},
				{"--group GROUP", "the access group from the config"},
				{"--access \"DEST [SERVICE...]\"", "limit where the peer may go: a network name, prefix or address, and optionally services such as tcp/443, udp/53 or icmp (repeatable)"},
			}, qrFlags...)},
		{name: "ls", aliases: []string{"list"}, summary: "list the peers with their state, last handshake and transfer"},
		{name: "show", args: "NAME", summary: "show one peer"},
		{name: "config", args: "NAME", summary: "print a peer's client config again (without a private key: edge-vpn never keeps it)", flags: qrFlags},
		{name: "rm", aliases: []string{"remove"}, args: "NAME", summary: "remove a peer and its DNS name"},
		{name: "enable", args: "NAME", summary: "let a disabled or expired peer connect again",
			flags: []flagHelp{{"--expires DURATION", "a new expiry from now, such as 30d, or never"}}},
		{name: "disable", args: "NAME", summary: "stop a peer from connecting, keeping its address and key"},
		{name: "rename", args: "NAME NEW", summary: "rename a peer (its DNS name follows)"},
	},
	"fw": {
		{name: "apply", summary: "apply the config file's firewall section now",
			flags: []flagHelp{{"--confirm [DURATION]", "roll back unless `edgectl fw confirm` follows within DURATION (default: firewall.confirm.default_timeout)"}}},
		{name: "confirm", summary: "keep the ruleset applied with --confirm"},
		{name: "diff", summary: "show what an apply of the config file would change"},
		{name: "show", summary: "print the loaded ruleset with counters",
			flags: []flagHelp{{"--all", "print every set element"}, {"--elements N", "print at most N elements of each set"}}},
		{name: "bans", summary: "list the bans, static and run-time"},
		{name: "ban", args: "ADDR", summary: "ban an address, or refresh its ban",
			flags: []flagHelp{{"--for DURATION", "how long, such as 1h or forever (default: firewall.bans.default_timeout)"}, {"--comment TEXT", "why, kept with the ban"}}},
		{name: "unban", args: "ADDR", summary: "lift a run-time ban"},
	},
}

// globalFlags are accepted before or after any command.
var globalFlags = []flagHelp{
	{"--socket-dir DIR", "the daemons' admin sockets (default /run/edge, or $" + SocketDirEnv + ")"},
	{"-o, --output FORMAT", "table (default), json, or conf (peer add and peer config)"},
	{"--timeout DURATION", "how long to wait for a daemon (default 10s)"},
	{"-h, --help", "show help for the command; nothing is changed"},
}

func commandNamed(name string) (command, bool) {
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == name })
	if i < 0 {
		return command{}, false
	}
	return commands[i], true
}

func subcommandNamed(cmd, name string) (subcommand, bool) {
	for _, s := range subcommands[cmd] {
		if s.name == name || slices.Contains(s.aliases, name) {
			return s, true
		}
	}
	return subcommand{}, false
}

// helpFor prints the help of the command path words (none: edgectl's own;
// "peer": the peer commands; "peer add": that one) and never acts. An
// unknown word is a usage error.
func (e *env) helpFor(words []string) int {
	if len(words) == 0 || words[0] == "help" {
		e.usage(e.stdout)
		return ExitOK
	}
	c, ok := commandNamed(words[0])
	if !ok {
		e.usageError("unknown command %q", words[0])
		e.usage(e.stderr)
		return ExitUsage
	}
	subs := subcommands[c.name]
	if len(words) == 1 || len(subs) == 0 || words[1] == "help" {
		e.commandHelp(e.stdout, c)
		return ExitOK
	}
	s, ok := subcommandNamed(c.name, words[1])
	if !ok {
		return e.usageError("unknown %s command %q; use %s", c.name, words[1], subNames(c.name))
	}
	fmt.Fprintf(e.stdout, "usage: edgectl %s %s\n\n%s.\n", c.name, strings.TrimSpace(s.name+" "+s.args+flagsHint(s.flags)), upperFirst(s.summary))
	if len(s.aliases) > 0 {
		fmt.Fprintf(e.stdout, "Also: %s.\n", strings.Join(s.aliases, ", "))
	}
	writeFlags(e.stdout, "flags", s.flags)
	writeFlags(e.stdout, "global flags", globalFlags)
	return ExitOK
}

func (e *env) commandHelp(w io.Writer, c command) {
	fmt.Fprintf(w, "usage: edgectl %s\n\n%s.\n", strings.TrimSpace(c.name+" "+c.args), upperFirst(c.summary))
	if subs := subcommands[c.name]; len(subs) > 0 {
		fmt.Fprintln(w, "\ncommands:")
		for _, s := range subs {
			fmt.Fprintf(w, "  %-28s %s\n", strings.TrimSpace(s.name+" "+s.args+flagsHint(s.flags)), s.summary)
		}
		fmt.Fprintf(w, "\nRun 'edgectl %s COMMAND --help' for a command's flags.\n", c.name)
	}
	writeFlags(w, "global flags", globalFlags)
}

func flagsHint(flags []flagHelp) string {
	if len(flags) == 0 {
		return ""
	}
	return " [flags]"
}

func writeFlags(w io.Writer, title string, flags []flagHelp) {
	if len(flags) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s:\n", title)
	for _, f := range flags {
		fmt.Fprintf(w, "  %-24s %s\n", f.name, f.summary)
	}
}

func subNames(cmd string) string {
	var names []string
	for _, s := range subcommands[cmd] {
		names = append(names, s.name)
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
