package main

import (
	"strings"
	"testing"
)

func TestHelpListsEveryCommand(t *testing.T) {
	res := mustSucceed(t, "help")
	for _, c := range commands {
		if !strings.Contains(res.stdout, "  "+c.name+" ") {
			t.Errorf("help does not list %q:\n%s", c.name, res.stdout)
		}
	}
}

func TestEveryCommandHasHelpWithExamples(t *testing.T) {
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			args := append(strings.Fields(c.name), "--help")
			res := mustSucceed(t, args...)
			if !strings.Contains(res.stdout, "Usage:") || !strings.Contains(res.stdout, "Examples:\n  llmpruner "+strings.Fields(c.name)[0]) {
				t.Errorf("--help of %q lacks usage or examples:\n%s", c.name, res.stdout)
			}
			if res.stderr != "" {
				t.Errorf("--help wrote to stderr: %q", res.stderr)
			}
			// "help <command>" shows the same text.
			if via := mustSucceed(t, append([]string{"help"}, strings.Fields(c.name)...)...); via.stdout != res.stdout {
				t.Errorf("\"help %s\" differs from \"%s --help\"", c.name, c.name)
			}
		})
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"eval"}, "eval needs a subcommand"},
		{[]string{"eval", "bleu"}, `unknown command "eval bleu"`},
		{[]string{"version", "--bogus"}, "-bogus"},
		{[]string{"version", "extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			expectFailure(t, runCLI(t, tc.args...), 2, tc.want)
		})
	}
}

func TestVersion(t *testing.T) {
	res := mustSucceed(t, "version")
	if !strings.HasPrefix(res.stdout, "llmpruner ") {
		t.Errorf("version output %q", res.stdout)
	}
}
