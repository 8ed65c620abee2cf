package main

import (
	"errors"
	"flag"
	"fmt"
)

// usageError marks a mistake on the command line (exit code 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }

// Unwrap returns what the message wraps (%w).
func (e *usageError) Unwrap() error { return errors.Unwrap(e.err) }

// usageErrorf returns a usageError with a message formatted as fmt.Errorf does (%w wraps, so that
// a library option.Error inside is reported with its flag); the message should name the flag.
func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

func isUsage(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}

// isHelp reports whether err is the flag package's "help requested" (exit code 0).
func isHelp(err error) bool { return errors.Is(err, flag.ErrHelp) }
