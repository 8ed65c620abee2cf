package data

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/llmpruner/llmpruner/internal/fuzzcheck"
)

// FuzzReadCalibIDs: calibration token ids (--calib-ids): a JSON array of equal-length arrays of
// non-negative ints. Properties: no panic; bounded time and allocation; what is accepted obeys
// the documented shape.
func FuzzReadCalibIDs(f *testing.F) {
	f.Add([]byte(`[[1, 306, 4658], [1, 450, 29871]]`))
	f.Add([]byte(`[[1, 2], [3]]`))
	f.Add([]byte(`[[1, -2]] x`))
	f.Add([]byte(`[[99999999999999999999]]`))
	scratch := fuzzcheck.NewScratch(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p := scratch.Write(t, "calib.json", data)
		fuzzcheck.Bounded(t, len(data), 32, func() {
			seqs, err := ReadCalibIDs(p)
			if err != nil {
				return
			}
			for _, s := range seqs {
				if len(s) == 0 || len(s) != len(seqs[0]) {
					t.Fatalf("accepted ragged or empty samples: %v", seqs)
				}
				for _, id := range s {
					if id < 0 {
						t.Fatalf("accepted negative id %d", id)
					}
				}
			}
			if err := CheckTokenIDs(seqs, 512, "calibration ids"); err == nil {
				for _, s := range seqs {
					for _, id := range s {
						if id >= 512 {
							t.Fatalf("CheckTokenIDs let id %d through for a vocabulary of 512", id)
						}
					}
				}
			}
		})
	})
}

// FuzzReadAlpaca: Alpaca JSON ([{instruction, input, output}, ...]). Properties: no panic;
// bounded time and allocation; accepted records have a non-empty instruction and output, and
// their prompt contains the instruction.
func FuzzReadAlpaca(f *testing.F) {
	if b := fuzzcheck.DataFile("text/alpaca/alpaca_cleaned_first5000.json"); b != nil {
		var recs []json.RawMessage
		if json.Unmarshal(b, &recs) == nil && len(recs) >= 4 {
			head, _ := json.Marshal(recs[:4])
			fuzzcheck.AddSeedVariants(f, head)
		}
	}
	f.Add([]byte(`[{"instruction": "Say hi", "input": "", "output": "hi"}, {"instruction": 3}]`))
	f.Add([]byte(`[{"instruction": "Say hi", "input": null, "output": "hi", "extra": [1,2]}]`))
	scratch := fuzzcheck.NewScratch(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p := scratch.Write(t, "alpaca.json", data)
		fuzzcheck.Bounded(t, len(data), 32, func() {
			recs, err := ReadAlpaca(p)
			if err != nil {
				return
			}
			for i, r := range recs {
				if len(bytes.TrimSpace([]byte(r.Instruction))) == 0 || len(bytes.TrimSpace([]byte(r.Output))) == 0 {
					t.Fatalf("record %d accepted with an empty instruction or output: %+v", i, r)
				}
				if p := AlpacaPrompt(r, true); !bytes.Contains([]byte(p), []byte(r.Instruction)) {
					t.Fatalf("record %d: prompt lacks the instruction", i)
				}
			}
		})
	})
}

// FuzzTextCorpora: the plain-text corpora (WikiText-2 joined rows, PTB lines, calibration text).
// Properties: no panic; bounded time and allocation; non-UTF-8 is an error; WikiText2Rows
// inverts "\n\n".join(rows) whenever it succeeds.
func FuzzTextCorpora(f *testing.F) {
	for _, rel := range []string{"text/wikitext2/wikitext2_test_joined_crlf.txt", "text/ptb/ptb.valid.txt", "text/tinystories/tinystories_val_head.txt"} {
		if head := fuzzcheck.HeadLines(rel, 12); head != nil {
			f.Add(head)
		}
	}
	f.Add([]byte(" = Title = \n\n\n\n Row one .\n\n"))
	f.Add([]byte("caf\xe9\r\n"))
	scratch := fuzzcheck.NewScratch(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p := scratch.Write(t, "corpus.txt", data)
		fuzzcheck.Bounded(t, len(data), 32, func() {
			text, err := ReadWikiText2(p)
			if err == nil {
				if !utf8.ValidString(text) {
					t.Fatal("ReadWikiText2 accepted invalid UTF-8")
				}
				if rows, err := WikiText2Rows(text); err == nil && strings.Join(rows, "\n\n") != text {
					t.Fatalf("WikiText2Rows does not invert the join: %q", rows)
				}
			}
			if text, err := ReadPTB(p); err == nil && !utf8.ValidString(text) {
				t.Fatal("ReadPTB accepted invalid UTF-8")
			}
			if text, err := ReadCalibrationText(p); err == nil {
				_ = SplitDocuments(text)
			}
		})
	})
}
