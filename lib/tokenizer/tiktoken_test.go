package tokenizer

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// llama3Reference is testdata/llama3_reference.json, written by scripts/tokenizer_llama3_ref.py
// (Python's regex module and a plain BPE-by-rank loop over the same tokenizer.model).
type llama3Reference struct {
	Cases []struct {
		Input     string   `json:"input"`
		Pretokens []string `json:"pretokens"`
		IDs       []int    `json:"ids"`
	} `json:"cases"`
	Wiki wikiRef `json:"wikitext2_test"`
}

func loadLlama3(t testing.TB) *Tiktoken {
	t.Helper()
	tok, err := LoadTiktoken(testdata.Path(t, "tokenizers/llama3/tokenizer.model"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTiktokenLlama3Reference(t *testing.T) {
	var ref llama3Reference
	readJSON(t, "testdata/llama3_reference.json", &ref)
	tok := loadLlama3(t)
	if tok.VocabSize() != 128256 || tok.BOS() != 128000 || tok.EOS() != 128001 {
		t.Fatalf("vocab %d bos %d eos %d", tok.VocabSize(), tok.BOS(), tok.EOS())
	}
	for name, id := range map[string]int{"<|eot_id|>": 128009, "<|start_header_id|>": 128006,
		"<|end_header_id|>": 128007, "<|reserved_special_token_5|>": 128010, "<|reserved_special_token_250|>": 128255} {
		if got, ok := tok.PieceID(name); !ok || got != id {
			t.Errorf("PieceID(%s) = %d, %v; want %d", name, got, ok, id)
		}
	}
	for _, c := range ref.Cases {
		var pre []string
		llama3Pretokenize(c.Input, func(p string) { pre = append(pre, p) })
		if strings.Join(pre, "\x00") != strings.Join(c.Pretokens, "\x00") {
			t.Errorf("pretokens(%q) = %q, want %q", c.Input, pre, c.Pretokens)
		}
		ids, err := tok.Encode(c.Input)
		if err != nil {
			t.Fatal(err)
		}
		if !equalInts(ids, c.IDs) {
			t.Errorf("Encode(%q) = %v, want %v", c.Input, ids, c.IDs)
		}
		if got := tok.Decode(append([]int{tok.BOS()}, ids...)); got != c.Input {
			t.Errorf("Decode(Encode(%q)) = %q", c.Input, got)
		}
	}
	if testing.Short() {
		return
	}
	// The whole WikiText-2 test text (1.3 MB) against the reference's id count and hash.
	checkWikiText(t, tok, ref.Wiki, true)
}

// idsSHA256 hashes ids written as "1,2,3" (the reference scripts' convention).
func idsSHA256(ids []int) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(id))
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// Byte tokens that do not form valid UTF-8 decode as Python's bytes.decode(errors="replace"):
// b"\xe2\x91 a\xff" → "\ufffd a\ufffd"; b"\xe2\x91\xff\xff\xf0\x9f\x91" → four U+FFFD.
func TestTiktokenDecodeInvalidBytes(t *testing.T) {
	tok := loadLlama3(t)
	ids := func(parts ...string) []int {
		var out []int
		for _, p := range parts {
			id, ok := tok.PieceID(p)
			if !ok {
				t.Fatalf("no token %q", p)
			}
			out = append(out, id)
		}
		return out
	}
	if got := tok.Decode(ids("\xe2", "\x91", " a", "\xff")); got != "\uFFFD a\uFFFD" {
		t.Errorf("Decode = %q", got)
	}
	if got := tok.Decode(ids("\xe2", "\x91", "\xff", "\xff", "\xf0", "\x9f", "\x91")); got != strings.Repeat("\uFFFD", 4) {
		t.Errorf("Decode = %q", got)
	}
}
