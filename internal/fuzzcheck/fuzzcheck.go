// Package fuzzcheck holds what the fuzz targets of llmpruner's readers share: seeds taken at run
// time from the real files of $LLMPRUNER_DATA (never copied into the repository), and the
// properties every target checks besides "no panic": each input is handled in bounded time and
// with a bounded allocation, so that a small hostile file cannot make a reader allocate
// gigabytes because of a size it merely claims.
//
// Seeds: go test (no -fuzz) replays testdata/fuzz/FuzzX plus the f.Add seeds, the real files
// whole; while fuzzing (-fuzz), real files larger than FuzzSeedLimit are cut to their first
// FuzzSeedLimit bytes, since mutating megabyte inputs would make each execution slow.
package fuzzcheck

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// FuzzSeedLimit bounds the size of a real-file seed while fuzzing (see the package comment).
const FuzzSeedLimit = 64 << 10

// MaxTime is the longest an input of n bytes may take: 5 s plus 5 s per MiB. Fuzzed inputs take
// milliseconds (a quadratic or exponential path would take far longer); the margin absorbs a
// shared machine (a soak once saw a 6 KB input that replays in 20 ms take 2.25 s while the
// fuzzer minimised another input) and the megabyte-sized real files the replay seeds with.
func MaxTime(n int) time.Duration { return 5*time.Second + time.Duration(n)*5*time.Second/(1<<20) }

// Fuzzing reports whether the test binary runs with -test.fuzz (fuzzing, not replaying).
func Fuzzing() bool {
	fl := flag.Lookup("test.fuzz")
	return fl != nil && fl.Value.String() != ""
}

// DataFile returns the bytes of $LLMPRUNER_DATA/rel, or nil when the variable is unset or the
// file missing (the target then runs on its checked-in corpus only).
func DataFile(rel string) []byte {
	dir := os.Getenv("LLMPRUNER_DATA")
	if dir == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		return nil
	}
	return b
}

// AddDataSeeds adds the real file $LLMPRUNER_DATA/rel to f's seed corpus (cut to FuzzSeedLimit
// bytes while fuzzing), with two variants: its first half, and a copy with one bit flipped in
// every 8th of its first 64 bytes (header fields). Missing files add nothing.
func AddDataSeeds(f *testing.F, rels ...string) {
	for _, rel := range rels {
		b := DataFile(rel)
		if b == nil {
			continue
		}
		AddSeedVariants(f, b)
	}
}

// AddSeedVariants adds b (cut while fuzzing), its first half and a bit-flipped copy.
func AddSeedVariants(f *testing.F, b []byte) {
	if Fuzzing() && len(b) > FuzzSeedLimit {
		b = b[:FuzzSeedLimit]
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	flipped := bytes.Clone(b)
	for i := 0; i < len(flipped) && i < 64; i += 8 {
		flipped[i] ^= 1 << (i / 8 % 8)
	}
	f.Add(flipped)
}

// HeadLines returns the first n lines of $LLMPRUNER_DATA/rel (nil when missing): a small, valid
// seed from a large line-oriented file.
func HeadLines(rel string, n int) []byte {
	b := DataFile(rel)
	if b == nil {
		return nil
	}
	end := 0
	for i := 0; i < n && end < len(b); i++ {
		j := bytes.IndexByte(b[end:], '\n')
		if j < 0 {
			return b
		}
		end += j + 1
	}
	return b[:end]
}

// Scratch is a directory for the files a fuzz target writes its inputs to: on /dev/shm when
// there is one (a tmpfs: writing there is ~10× faster than t.TempDir on a disk), one per fuzz
// process, reused by every input (fuzz functions run one input at a time per process).
type Scratch struct{ Dir string }

// NewScratch creates the scratch directory of f's process; f removes it when done.
func NewScratch(f *testing.F) *Scratch {
	f.Helper()
	base := os.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "llmpruner-fuzz-")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = os.RemoveAll(dir) })
	return &Scratch{Dir: dir}
}

// Write writes data to the file name of the scratch directory and returns its path.
func (s *Scratch) Write(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(s.Dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Limit is the allocation allowed for an input of n bytes: perByte·n plus a fixed slack for the
// reader's own bookkeeping (maps, error strings, small buffers).
func Limit(n int, perByte uint64) uint64 { return uint64(n)*perByte + 8<<20 }

// Bounded runs fn on an input of n bytes and fails t when it allocated more than Limit(n,
// perByte) bytes in total (every allocation counts, freed or not) or ran longer than MaxTime(n).
// Fuzz functions run one input at a time per process, so the process-wide counter measures fn.
func Bounded(t testing.TB, n int, perByte uint64, fn func()) {
	t.Helper()
	allocated, elapsed := Measure(fn)
	if limit := Limit(n, perByte); allocated > limit {
		t.Fatalf("allocated %d bytes for a %d-byte input, more than the %d allowed", allocated, n, limit)
	}
	if elapsed > MaxTime(n) {
		t.Fatalf("took %v for a %d-byte input, more than %v", elapsed, n, MaxTime(n))
	}
}

// Measure runs fn and returns the bytes it allocated (runtime.MemStats.TotalAlloc) and its time.
func Measure(fn func()) (allocated uint64, elapsed time.Duration) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	fn()
	elapsed = time.Since(start)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, elapsed
}
