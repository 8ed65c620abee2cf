package tokenizer

import (
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// chatglmReference is testdata/chatglm_reference.json, written by scripts/tokenizer_chatglm_ref.py:
// THUDM's tokenization_chatglm.py logic re-implemented over the SentencePiece library.
type chatglmReference struct {
	NumImageTokens int `json:"num_image_tokens"`
	GMASK          int `json:"gmask_id"`
	SOP            int `json:"sop_id"`
	Cases          []struct {
		Input    string   `json:"input"`
		IDs      []int    `json:"ids"`
		Pieces   []string `json:"pieces"`
		InputIDs []int    `json:"input_ids"`
		Decoded  string   `json:"decoded"`
	} `json:"cases"`
	Wiki wikiRef `json:"wikitext2_test"`
}

func TestChatGLMReference(t *testing.T) {
	var ref chatglmReference
	readJSON(t, "testdata/chatglm_reference.json", &ref)
	loaded, _, err := Load(testdata.Path(t, "tokenizers/chatglm-6b"))
	if err != nil {
		t.Fatal(err)
	}
	tok := loaded.(*ChatGLM)
	if tok.offset != ref.NumImageTokens || tok.GMASK() != ref.GMASK || tok.BOS() != ref.SOP || tok.EOS() != 130005 || tok.MASK() != 130000 {
		t.Fatalf("offset %d gmask %d bos %d eos %d mask %d", tok.offset, tok.GMASK(), tok.BOS(), tok.EOS(), tok.MASK())
	}
	for _, c := range ref.Cases {
		ids, err := tok.Encode(c.Input)
		if err != nil {
			t.Fatal(err)
		}
		if !equalInts(ids, c.IDs) {
			t.Errorf("Encode(%q) = %v, want %v", c.Input, ids, c.IDs)
			continue
		}
		for i, id := range ids {
			if tok.Piece(id) != c.Pieces[i] {
				t.Errorf("Piece(%d) = %q, want %q", id, tok.Piece(id), c.Pieces[i])
			}
		}
		inputs, err := ModelInputs(tok, c.Input)
		if err != nil || !equalInts(inputs, c.InputIDs) {
			t.Errorf("ModelInputs(%q) = %v, %v; want %v", c.Input, inputs, err, c.InputIDs)
		}
		if got := tok.Decode(c.InputIDs); got != c.Decoded {
			t.Errorf("Decode(%v) = %q, want %q", c.InputIDs, got, c.Decoded)
		}
	}
	if testing.Short() {
		return
	}
	checkWikiText(t, tok, ref.Wiki, true)
}

// THUDM's default num_image_tokens (20000) applies to a bare ice_text.model without config.
func TestChatGLMImageTokenOffset(t *testing.T) {
	tok, err := LoadChatGLM(testdata.Path(t, "tokenizers/chatglm-6b/ice_text.model"), chatglmDefaultImageTokens)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := ModelInputs(tok, "Hello, world!")
	// ▁Hello , ▁world ! with the released (offset 0) ids 19316 6 398 35 (from chatglm_reference.json).
	if want := []int{39316, 20006, 20398, 20035, 150001, 150004}; err != nil || !equalInts(ids, want) {
		t.Errorf("ModelInputs = %v, %v; want %v", ids, err, want)
	}
	if tok.Piece(5) != "<image_5>" || tok.VocabSize() != 150344 || tok.Decode(append([]int{7}, ids...)) != "Hello, world!" {
		t.Errorf("Piece(5) %q VocabSize %d Decode %q", tok.Piece(5), tok.VocabSize(), tok.Decode(ids))
	}
}
