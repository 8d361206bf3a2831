package cli

import (
	"fmt"
	"strings"

	"github.com/homeedge/edge/internal/suite"
)

// completion prints a completion script built from the same tables as
// help: commands, their subcommands and each one's flags, the daemons
// (the suite's and any socket in the socket directory, each once), log
// levels and output formats.
func (e *env) completion(args []string) int {
	if len(args) != 1 {
		return e.usageError("usage: edgectl completion bash|zsh|fish")
	}
	switch args[0] {
	case "bash":
		fmt.Fprint(e.stdout, bashCompletion())
	case "zsh":
		fmt.Fprint(e.stdout, "#compdef edgectl\nautoload -U +X bashcompinit && bashcompinit\n"+bashCompletion())
	case "fish":
		fmt.Fprint(e.stdout, fishCompletion())
	default:
		return e.usageError("unknown shell %q; use bash, zsh or fish", args[0])
	}
	return ExitOK
}

// outputs are the values of -o.
const outputs = "table json conf"

func commandNames() string {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	return strings.Join(names, " ")
}

func globalFlagWords() string {
	var w []string
	for _, f := range globalFlags {
		for _, part := range strings.Split(f.name, ", ") {
			w = append(w, flagHelp{name: part}.word())
		}
	}
	return strings.Join(w, " ")
}

func subWords(cmd string) string {
	var w []string
	for _, s := range subcommands[cmd] {
		w = append(w, s.name)
	}
	return strings.Join(w, " ")
}

func flagWords(flags []flagHelp) string {
	var w []string
	for _, f := range flags {
		w = append(w, f.word())
	}
	return strings.Join(w, " ")
}

// withSubs are the commands that take subcommands, in command order.
func withSubs() []string {
	var out []string
	for _, c := range commands {
		if len(subcommands[c.name]) > 0 {
			out = append(out, c.name)
		}
	}
	return out
}

func bashCompletion() string {
	var b strings.Builder
	b.WriteString(`# edgectl completion; load with: source <(edgectl completion bash)
_edgectl() {
	local cur prev cmd sub i
	cur="${COMP_WORDS[COMP_CWORD]}"
	prev="${COMP_WORDS[COMP_CWORD-1]}"
	case "$prev" in
	-o|--output) COMPREPLY=($(compgen -W "` + outputs + `" -- "$cur")); return ;;
	--socket-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--timeout) return ;;
	esac
	for ((i = 1; i < COMP_CWORD; i++)); do
		case "${COMP_WORDS[i]}" in
		-o|--output|--socket-dir|--timeout) ((i++)) ;;
		-*) ;;
		*) if [[ -z "$cmd" ]]; then cmd="${COMP_WORDS[i]}"; elif [[ -z "$sub" ]]; then sub="${COMP_WORDS[i]}"; fi ;;
		esac
	done
	if [[ "$cur" == -* ]]; then
		local flags="` + globalFlagWords() + `"
		case "$cmd $sub" in
`)
	for _, c := range withSubs() {
		for _, s := range subcommands[c] {
			if len(s.flags) == 0 {
				continue
			}
			names := append([]string{s.name}, s.aliases...)
			for i := range names {
				names[i] = c + " " + names[i]
			}
			fmt.Fprintf(&b, "\t\t%q) flags+=\" %s\" ;;\n", names[0], flagWords(s.flags))
			for _, n := range names[1:] {
				fmt.Fprintf(&b, "\t\t%q) flags+=\" %s\" ;;\n", n, flagWords(s.flags))
			}
		}
	}
	fmt.Fprintf(&b, `		esac
		COMPREPLY=($(compgen -W "$flags" -- "$cur"))
		return
	fi
	local dir="${EDGE_SOCKET_DIR:-%s}" daemons="%s" s
	for s in "$dir"/*.sock; do
		[[ -e "$s" ]] || continue
		s="$(basename "$s" .sock)"
		[[ " $daemons " == *" $s "* ]] || daemons+=" $s"
	done
	case "$cmd" in
	"") COMPREPLY=($(compgen -W "%s" -- "$cur")) ;;
	status|reload) COMPREPLY=($(compgen -W "$daemons" -- "$cur")) ;;
	log-level)
		if [[ -z "$sub" ]]; then COMPREPLY=($(compgen -W "$daemons" -- "$cur"))
		elif [[ "$prev" == "$sub" ]]; then COMPREPLY=($(compgen -W "debug info warn error" -- "$cur")); fi ;;
	completion) [[ -z "$sub" ]] && COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")) ;;
	help)
		if [[ -z "$sub" ]]; then COMPREPLY=($(compgen -W "%s" -- "$cur"))
		else case "$sub" in
`, suite.DefaultSocketDir, strings.Join(suite.Daemons, " "), commandNames(), commandNames())
	for _, c := range withSubs() {
		fmt.Fprintf(&b, "\t\t\t%s) [[ \"$prev\" == %s ]] && COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", c, c, subWords(c))
	}
	b.WriteString("\t\tesac; fi ;;\n")
	for _, c := range withSubs() {
		fmt.Fprintf(&b, "\t%s) [[ -z \"$sub\" ]] && COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", c, subWords(c))
	}
	b.WriteString("\tesac\n}\ncomplete -F _edgectl edgectl\n")
	return b.String()
}

func fishCompletion() string {
	var b strings.Builder
	cmds := commandNames()
	daemons := strings.Join(suite.Daemons, " ")
	fmt.Fprintf(&b, `# edgectl completion; load with: edgectl completion fish | source
complete -c edgectl -f
complete -c edgectl -n "not __fish_seen_subcommand_from %s" -a "%s"
complete -c edgectl -n "__fish_seen_subcommand_from status reload" -a "%s (__edgectl_sockets)"
complete -c edgectl -n "__fish_seen_subcommand_from log-level" -a "%s (__edgectl_sockets) debug info warn error"
complete -c edgectl -n "__fish_seen_subcommand_from completion" -a "bash zsh fish"
complete -c edgectl -s o -l output -r -a "%s"
complete -c edgectl -l socket-dir -r -a "(__fish_complete_directories)"
complete -c edgectl -l timeout -r
complete -c edgectl -s h -l help
function __edgectl_sockets
	set -l dir /run/edge
	set -q EDGE_SOCKET_DIR; and set dir $EDGE_SOCKET_DIR
	for s in $dir/*.sock
		set -l n (basename $s .sock)
		contains -- $n %s; or echo $n
	end
end
`, cmds, cmds, daemons, daemons, outputs, daemons)
	for _, c := range withSubs() {
		subs := subWords(c)
		fmt.Fprintf(&b, "complete -c edgectl -n \"__fish_seen_subcommand_from %s; and not __fish_seen_subcommand_from %s\" -a %q\n", c, subs, subs)
		for _, s := range subcommands[c] {
			names := strings.Join(append([]string{s.name}, s.aliases...), " ")
			for _, f := range s.flags {
				long := strings.TrimPrefix(f.word(), "--")
				req := ""
				if strings.Contains(f.name, " ") && !strings.Contains(f.name, "[") {
					req = " -r"
				}
				fmt.Fprintf(&b, "complete -c edgectl -n \"__fish_seen_subcommand_from %s; and __fish_seen_subcommand_from %s\" -l %s%s -d %q\n",
					c, names, long, req, f.summary)
			}
		}
	}
	return b.String()
}
