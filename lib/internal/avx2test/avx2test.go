// Package avx2test lets a test check GoMLX's AVX2 matrix kernels on a machine with AVX-512 too:
// the pure-Go backend picks its kernels once per process from the CPU and $GOMLX_GO_SIMD_AVX512,
// so the test runs itself again in a child process of the test binary with that set to false.
package avx2test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// Env turns the Go backend's AVX-512 kernels off when "false" (its AVX2 kernels are used, as on a
// CPU without AVX-512).
const Env = "GOMLX_GO_SIMD_AVX512"

// Rerun runs the top-level test t once more in a child process with GOMLX_GO_SIMD_AVX512=false,
// unless that variable is already set (in the child, or when the caller chose the kernels), and
// fails t with the child's output if the child fails. Call it at the start of the test.
func Rerun(t *testing.T) {
	t.Helper()
	if _, set := os.LookupEnv(Env); set {
		t.Logf("%s=%s", Env, os.Getenv(Env))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), Env+"=false")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s again with %s=false (the AVX2 kernels): %v\n%s", t.Name(), Env, err, out)
		return
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()+" ") {
		t.Errorf("%s again with %s=false: the child process did not run it:\n%s", t.Name(), Env, out)
		return
	}
	t.Logf("%s passed with %s=false (the AVX2 kernels) too", t.Name(), Env)
}
