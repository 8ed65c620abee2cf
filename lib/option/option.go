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
	Names   []Name
	msg     string
	wrapped error
}

func (e *Error) Error() string { return e.msg }

// Unwrap returns what the error wraps (%w of Errorf, the original error of Renamed), for
// errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.wrapped }

// Errorf formats an *Error as fmt.Errorf does (%w wraps); the Name values among args are the
// options it names, e.g.
//
//	option.Errorf("%s %g must be in [0, 1)", option.Name("prune.Options.Ratio"), o.Ratio)
func Errorf(format string, args ...any) error {
	f := fmt.Errorf(format, args...)
	e := &Error{msg: f.Error(), wrapped: errors.Unwrap(f)}
	for _, a := range args {
		if n, ok := a.(Name); ok {
			e.Names = append(e.Names, n)
		}
	}
	return e
}

// Renamed returns err with option from said as to, for a library call made with the value of
// another option (lora's TrainOptions.PPLSeqLen is eval's PPLOptions.SeqLen); err when it names no
// option.
func Renamed(err error, from, to Name) error {
	var names []Name
	for e := err; e != nil; e = errors.Unwrap(e) {
		if oe, ok := e.(*Error); ok {
			for _, n := range oe.Names {
				if n == from {
					n = to
				}
				names = append(names, n)
			}
		}
	}
	if names == nil {
		return err
	}
	msg := Rename(err, func(n Name) string {
		if n == from {
			return string(to)
		}
		return ""
	})
	return &Error{Names: names, msg: msg, wrapped: err}
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
