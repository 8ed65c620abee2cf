package eval

import (
	"slices"
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
)

// With the LLaMA tokenizer, lm-eval (HF LlamaTokenizer, add_special_tokens=False) encodes the
// BoolQ continuation " yes" as [29871, 4874] ("▁", "▁yes") and " no" as [29871, 694], and the
// context without BOS. TokenizeRequest must give exactly these ids.
func TestTokenizeRequestLLaMAContinuationIDs(t *testing.T) {
	tok, _, err := tokenizer.Load(testdata.Path(t, "tokenizers/llama2/tokenizer.model"))
	if err != nil {
		t.Fatal(err)
	}
	for cont, want := range map[string][]int{" yes": {29871, 4874}, " no": {29871, 694}} {
		tz, err := TokenizeRequest(tok, Request{"Question: a\nAnswer:", cont}, 2048)
		if err != nil {
			t.Fatal(err)
		}
		// "▁Question" ":" "▁a" "<0x0A>" "Answer" ":" then the continuation.
		wantAll := append([]int{894, 29901, 263, 13, 22550, 29901}, want...)
		if !slices.Equal(tz.Tokens, wantAll) || tz.ContLen != 2 {
			t.Errorf("%q: tokens %v (cont %d), want %v (cont 2)", cont, tz.Tokens, tz.ContLen, wantAll)
		}
	}
}
