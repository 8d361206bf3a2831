package cli

import (
	"fmt"
	"strings"

	"github.com/homeedge/edge/internal/suite"
)

func (e *env) completion(args []string) int {
	if len(args) != 1 {
		return e.usageError("usage: edgectl completion bash|zsh|fish")
	}
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	cmds := strings.Join(names, " ")
	daemons := strings.Join(suite.Daemons, " ")
	switch args[0] {
	case "bash":
		fmt.Fprintf(e.stdout, bashCompletion, cmds, daemons)
	case "zsh":
		fmt.Fprintf(e.stdout, "#compdef edgectl\nautoload -U +X bashcompinit && bashcompinit\n"+bashCompletion, cmds, daemons)
	case "fish":
		fmt.Fprintf(e.stdout, fishCompletion, cmds, cmds, daemons, daemons)
	default:
		return e.usageError("unknown shell %q; use bash, zsh or fish", args[0])
	}
	return ExitOK
}

// bashCompletion completes commands, daemon names (the suite's and any
// socket in the socket directory), log levels and global flags.
const bashCompletion = `# edgectl completion; load with: source <(edgectl completion bash)
_edgectl() {
	local cur prev cmd i
	cur="${COMP_WORDS[COMP_CWORD]}"
	prev="${COMP_WORDS[COMP_CWORD-1]}"
	case "$prev" in
	-o|--output) COMPREPLY=($(compgen -W "table json" -- "$cur")); return ;;
	--socket-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--timeout) return ;;
	esac
	for ((i = 1; i < COMP_CWORD; i++)); do
		case "${COMP_WORDS[i]}" in
		-o|--output|--socket-dir|--timeout) ((i++)) ;;
		-*) ;;
		*) cmd="${COMP_WORDS[i]}"; break ;;
		esac
	done
	if [[ "$cur" == -* ]]; then
		COMPREPLY=($(compgen -W "--socket-dir -o --output --timeout --help" -- "$cur"))
		return
	fi
	local dir="${EDGE_SOCKET_DIR:-/run/edge}" daemons="%[2]s" s
	for s in "$dir"/*.sock; do [[ -e "$s" ]] && daemons+=" $(basename "$s" .sock)"; done
	case "$cmd" in
	"") COMPREPLY=($(compgen -W "%[1]s" -- "$cur")) ;;
	status|reload) COMPREPLY=($(compgen -W "$daemons" -- "$cur")) ;;
	log-level)
		if [[ "$prev" == log-level ]]; then COMPREPLY=($(compgen -W "$daemons" -- "$cur"))
		else COMPREPLY=($(compgen -W "debug info warn error" -- "$cur")); fi ;;
	completion) COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")) ;;
	record) [[ "$prev" == record ]] && COMPREPLY=($(compgen -W "ls add rm" -- "$cur")) ;;
	fw) [[ "$prev" == fw ]] && COMPREPLY=($(compgen -W "apply confirm diff show bans ban unban" -- "$cur")) ;;
	esac
}
complete -F _edgectl edgectl
`

const fishCompletion = `# edgectl completion; load with: edgectl completion fish | source
complete -c edgectl -f
complete -c edgectl -n "not __fish_seen_subcommand_from %s" -a "%s"
complete -c edgectl -n "__fish_seen_subcommand_from status reload" -a "%s"
complete -c edgectl -n "__fish_seen_subcommand_from log-level" -a "%s debug info warn error"
complete -c edgectl -n "__fish_seen_subcommand_from completion" -a "bash zsh fish"
complete -c edgectl -n "__fish_seen_subcommand_from record" -a "ls add rm"
complete -c edgectl -n "__fish_seen_subcommand_from fw" -a "apply confirm diff show bans ban unban"
complete -c edgectl -s o -l output -r -a "table json"
complete -c edgectl -l socket-dir -r -a "(__fish_complete_directories)"
complete -c edgectl -l timeout -r
`
