// Package option is the error type for a bad option value given to the library: its message
// names the option as Go code sets it ("prune.Options.Ratio 1.5 must be in [0, 1)"), and it
// carries the names it uses so that a front end can say them its own way — the command line
// prints "--ratio 1.5 must be in [0, 1)" (Rename).
package option

import (
	"errors"
	"fmt"
	"strings"
)

// Name is an option as a library user sets it: a field of an options struct with its package
// ("prune.Options.Ratio", "lora.Config.R") or a function's parameter ("data.ParseTextSet spec").
type Name string

// Error is a bad option value. Its message names each option in Names literally.
type Error struct {
	Names []Name
	err   error // the formatted message (and what it wraps with %w)
}

func (e *Error) Error() string { return e.err.Error() }

// Unwrap returns what the message wraps (%w), for errors.Is and errors.As.
func (e *Error) Unwrap() error { return errors.Unwrap(e.err) }

// Errorf formats an *Error as fmt.Errorf does (%w wraps); the Name values among args are the
// options it names, e.g.
//
//	option.Errorf("%s %g must be in [0, 1)", option.Name("prune.Options.Ratio"), o.Ratio)
func Errorf(format string, args ...any) error {
	e := &Error{err: fmt.Errorf(format, args...)}
	for _, a := range args {
		if n, ok := a.(Name); ok {
			e.Names = append(e.Names, n)
		}
	}
	return e
}

// Rename returns err's message with every option name carried by the *Error values in its chain
// replaced by rename(name); names for which rename returns "" stay as they are.
func Rename(err error, rename func(Name) string) string {
	msg := err.Error()
	for e := err; e != nil; e = errors.Unwrap(e) {
		oe, ok := e.(*Error)
		if !ok {
			continue
		}
		for _, n := range oe.Names {
			if r := rename(n); r != "" {
				msg = strings.ReplaceAll(msg, string(n), r)
			}
		}
	}
	return msg
}
