package main

import (
	"errors"
	"flag"
	"fmt"
)

// usageError marks a mistake on the command line (exit code 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usageErrorf returns a usageError with a formatted message; the message should name the flag.
func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func isUsage(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}

// isHelp reports whether err is the flag package's "help requested" (exit code 0).
func isHelp(err error) bool { return errors.Is(err, flag.ErrHelp) }
