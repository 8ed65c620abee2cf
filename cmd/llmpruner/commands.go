package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
)

// command is one subcommand ("info", "eval ppl", ...).
type command struct {
	name     string   // as typed, e.g. "eval ppl"
	summary  string   // one line for the command list
	synopsis string   // flags synopsis shown by --help
	details  string   // optional paragraph(s) shown by --help
	examples []string // example command lines shown by --help
	// run parses args (the flags after the command name) and executes the command.
	run func(env *env, args []string) error
}

// commandOrder is the order "llmpruner help" lists the commands in.
var commandOrder = []string{
	"info", "tokenize", "generate", "score", "eval ppl", "eval zeroshot", "stats",
	"convert", "plan", "prune", "finetune", "demo", "help", "version",
}

// commands holds every registered subcommand, in commandOrder.
var commands []*command

// register adds c to the command table (called from each command file's init).
func register(c *command) {
	commands = append(commands, c)
	slices.SortStableFunc(commands, func(a, b *command) int {
		return slices.Index(commandOrder, a.name) - slices.Index(commandOrder, b.name)
	})
}

func init() {
	helpCmd.run = runHelp // set here: runHelp refers back to the command table
	register(helpCmd)
	register(versionCmd)
}

// findCommand resolves the command named by the first one or two arguments and returns it
// with the remaining arguments.
func findCommand(args []string) (*command, []string, error) {
	if len(args) == 0 {
		return helpCmd, nil, nil
	}
	switch args[0] {
	case "-h", "-help", "--help":
		return helpCmd, args[1:], nil
	case "-version", "--version":
		return versionCmd, args[1:], nil
	}
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c, args[len(words):], nil
		}
	}
	if args[0] == "eval" {
		if len(args) == 1 {
			return nil, nil, usageErrorf("eval needs a subcommand: \"eval ppl\" or \"eval zeroshot\"")
		}
		return nil, nil, usageErrorf("unknown command \"eval %s\" (known: eval ppl, eval zeroshot)", args[1])
	}
	return nil, nil, usageErrorf("unknown command %q", args[0])
}

var helpCmd = &command{
	name:     "help",
	summary:  "show the commands, or the help of one command",
	synopsis: "help [command]",
	examples: []string{"llmpruner help", "llmpruner help eval ppl"},
}

// runHelp prints the overview, or the full help of the named command.
func runHelp(env *env, args []string) error {
	if len(args) == 0 {
		printOverview(env.stdout)
		return nil
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		printCommandHelp(env.stdout, env.cmd, nil)
		return nil
	}
	c, _, err := findCommand(args)
	if err != nil {
		return err
	}
	// Each command prints its full help (flags included) when given --help.
	if err := c.run(newEnv(c, env.stdout, env.stderr), []string{"--help"}); err != nil && !isHelp(err) {
		return err
	}
	return nil
}

var versionCmd = &command{
	name:     "version",
	summary:  "print the version of llmpruner",
	synopsis: "version",
	examples: []string{"llmpruner version"},
	run: func(env *env, args []string) error {
		if err := env.parse(args); err != nil {
			return err
		}
		fmt.Fprintln(env.stdout, "llmpruner", version())
		return nil
	},
}

// version is the module version and VCS revision the binary was built from.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v += " " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				v += " (modified)"
			}
		}
	}
	return v + " " + info.GoVersion
}

func printOverview(w io.Writer) {
	fmt.Fprint(w, `llmpruner: structural pruning of LLaMA-family language models (LLM-Pruner in Go).

Usage:
  llmpruner <command> [flags]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Shared flags (same meaning in every command that takes them):
  --model M       a Hugging Face model directory, a llama2.c .bin or a GGUF file
  --tokenizer T   tokenizer file for llama2.c models when it is not beside the .bin
  --json          machine-readable output on stdout (progress and logs go to stderr)
  --adapter DIR   LoRA adapter (PEFT directory, as finetune writes) applied to --model;
                  convert and prune merge it into the weights first

Environment:
  LLMPRUNER_DATA   data folder (models/, text/, zeroshot/) used by "demo"
  LLMPRUNER_DEBUG  set to 1 to print stack traces of internal errors
  GOMLX_BACKEND    GoMLX backend (default "go", the pure-Go CPU backend)

Run "llmpruner <command> --help" for the flags and examples of a command.
`)
}
