package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/internal/fuzzcheck"
	"google.golang.org/protobuf/encoding/protowire"
)

// TestHostileTokenizerFiles: tokenizer files whose length fields claim far more than the file
// holds fail with an error naming the file, allocating at most a small multiple of its size.
func TestHostileTokenizerFiles(t *testing.T) {
	// A SentencePiece ModelProto whose first piece (field 1, bytes) claims 2⁶² bytes.
	huge := protowire.AppendTag(nil, 1, protowire.BytesType)
	huge = protowire.AppendVarint(huge, 1<<62)
	huge = append(huge, "▁a"...)
	// A nested piece message whose string claims 2³¹ bytes inside a 20-byte piece.
	inner := protowire.AppendTag(nil, 1, protowire.BytesType)
	inner = protowire.AppendVarint(inner, 1<<31)
	nested := protowire.AppendTag(nil, 1, protowire.BytesType)
	nested = protowire.AppendBytes(nested, append(inner, "abc"...))
	// llama2.c tokenizer.bin: max_token_length 16, then a token claiming 2³¹-1 bytes.
	l2c := []byte{16, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 'a'}
	for _, c := range []struct {
		name, file string
		data       []byte
		want       string
	}{
		{"protobuf length prefix 2⁶²", "tokenizer.model", huge, "SentencePiece"},
		{"nested length prefix 2³¹", "tokenizer.model", nested, "SentencePiece"},
		{"llama2.c token length 2³¹-1", "tokenizer.bin", l2c, "length 2147483647"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), c.file)
			if err := os.WriteFile(p, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			var err error
			allocated, _ := fuzzcheck.Measure(func() { _, _, err = Load(p) })
			if limit := fuzzcheck.Limit(len(c.data), 16); allocated > limit {
				t.Errorf("allocated %d bytes for a %d-byte file (limit %d)", allocated, len(c.data), limit)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("error %v: want one naming %s and saying %q", err, p, c.want)
			}
		})
	}
}
