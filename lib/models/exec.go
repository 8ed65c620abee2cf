package models

// Compiled-graph cache of a Model and the panic → error boundary of the host-side API.

import (
	"fmt"

	"github.com/gomlx/gomlx/ml/model"
	"github.com/pkg/errors"
)

// maxCompiledShapes bounds the graphs one Exec keeps; inputs are bucketed so few are needed.
const maxCompiledShapes = 64

// cachedExec returns the Exec stored under key, building it with build on first use.
func (m *Model) cachedExec(key string, build func() (*model.Exec, error)) (*model.Exec, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.execs[key]; ok {
		return e, nil
	}
	e, err := build()
	if err != nil {
		return nil, errors.WithMessagef(err, "building %s graph", key)
	}
	e.SetMaxCache(maxCompiledShapes)
	if m.execs == nil {
		m.execs = make(map[string]*model.Exec)
	}
	m.execs[key] = e
	return e, nil
}

// ResetExecs drops the compiled graphs. Call it after changing variable shapes (pruning), the
// config, or m.Hooks.
func (m *Model) ResetExecs() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.execs {
		e.Finalize()
	}
	m.execs = nil
}

// recoverError turns a panic of graph-building code into an error stored in *err.
func recoverError(err *error, what string) {
	r := recover()
	if r == nil {
		return
	}
	if e, ok := r.(error); ok {
		*err = errors.WithMessage(e, what)
		return
	}
	*err = errors.Errorf("%s: %s", what, fmt.Sprint(r))
}
