// Command llmpruner loads, inspects, evaluates and structurally prunes LLaMA-family language
// models (LLM-Pruner in Go on GoMLX).
//
// Usage:
//
//	llmpruner <command> [flags]
//
// Run "llmpruner help" for the list of commands and "llmpruner <command> --help" for the flags
// and examples of one command. Every command accepts --json for machine-readable output on
// stdout; progress and logs go to stderr. Errors are one line on stderr,
// "llmpruner: <command>: <message>", with exit code 1 (2 for usage errors).
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed (bad input file, load failure, ...)
	exitUsage = 2 // the command line itself is wrong (unknown command/flag, bad flag value)
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the process exit code. It never lets a panic
// escape: the panic's message is reported as an error (with the stack only when
// LLMPRUNER_DEBUG=1).
func run(args []string, stdout, stderr io.Writer) (code int) {
	cmdName := "llmpruner"
	defer func() {
		if r := recover(); r != nil {
			reportError(stderr, cmdName, fmt.Errorf("internal error: %v", r))
			if os.Getenv("LLMPRUNER_DEBUG") == "1" {
				_, _ = stderr.Write(debug.Stack())
			} else {
				fmt.Fprintln(stderr, "llmpruner: (set LLMPRUNER_DEBUG=1 to see where it happened)")
			}
			code = exitError
		}
	}()
	cmd, rest, err := findCommand(args)
	if cmd != nil {
		cmdName = cmd.name
	}
	if err != nil {
		reportError(stderr, cmdName, fmt.Errorf("%w (run 'llmpruner help' for the list of commands)", err))
		return exitUsage
	}
	env := newEnv(cmd, stdout, stderr)
	if err := cmd.run(env, rest); err != nil {
		if isHelp(err) {
			return exitOK
		}
		if isUsage(err) {
			reportError(stderr, cmdName, fmt.Errorf("%w (see 'llmpruner %s --help')", err, cmdName))
			return exitUsage
		}
		reportError(stderr, cmdName, err)
		if os.Getenv("LLMPRUNER_DEBUG") == "1" {
			fmt.Fprintf(stderr, "%+v\n", err)
		}
		return exitError
	}
	return exitOK
}

// reportError prints err as the single line "llmpruner: <command>: <message>".
func reportError(w io.Writer, cmdName string, err error) {
	msg := oneLine(errorMessage(err))
	if cmdName == "llmpruner" {
		fmt.Fprintf(w, "llmpruner: %s\n", msg)
		return
	}
	fmt.Fprintf(w, "llmpruner: %s: %s\n", cmdName, msg)
}

// oneLine joins a multi-line message into one line: lines after one ending in ":" are joined
// with a space, others with "; ".
func oneLine(msg string) string {
	var b strings.Builder
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if b.Len() > 0 {
			if strings.HasSuffix(b.String(), ":") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(line)
	}
	return b.String()
}
