package tokenizer

import (
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// Encoding speed on the whole WikiText-2 test text (1.3 MB), reported as MB/s.
func benchmarkEncode(b *testing.B, tok Tokenizer) {
	text := loadWikiText(b)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tok.Encode(text); err != nil {
			b.Fatal(err)
		}
	}
}

func loadForBench(b *testing.B, rel string) Tokenizer {
	tok, _, err := Load(testdata.Path(b, rel))
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

func BenchmarkEncodeWikiTextSentencePieceLlama2(b *testing.B) {
	benchmarkEncode(b, loadForBench(b, "tokenizers/llama2/tokenizer.model"))
}

func BenchmarkEncodeWikiTextLlama2CTokenizerBin(b *testing.B) {
	benchmarkEncode(b, loadForBench(b, "tokenizers/llama2/tokenizer.bin"))
}

func BenchmarkEncodeWikiTextTiktokenLlama3(b *testing.B) {
	benchmarkEncode(b, loadForBench(b, "tokenizers/llama3/tokenizer.model"))
}

func BenchmarkEncodeWikiTextChatGLM(b *testing.B) {
	benchmarkEncode(b, loadForBench(b, "tokenizers/chatglm-6b"))
}
