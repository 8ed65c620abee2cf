//go:build xla

package backend

// The XLA backend ("xla:cuda", "xla:cpu", ...), compiled in with -tags xla. It loads a PJRT plugin
// at run time; no plugin is downloaded unless the caller enables go-xla's auto-install.
import _ "github.com/gomlx/go-xla/compute/xla"
