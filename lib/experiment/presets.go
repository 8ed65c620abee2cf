package experiment

import (
	"os"
	"path/filepath"

	"github.com/llmpruner/llmpruner/lib/eval"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/prune"
)

// dataPath is a file under $LLMPRUNER_DATA.
func dataPath(rel string) string {
	return filepath.Join(os.Getenv("LLMPRUNER_DATA"), rel)
}

// Stories260K is the small real model the small modes use ($LLMPRUNER_DATA/models/stories260K).
func Stories260K() string { return dataPath("models/stories260K/stories260K.bin") }

// TinyStoriesText is the TinyStories validation text of $LLMPRUNER_DATA.
func TinyStoriesText() string { return dataPath("text/tinystories/tinystories_val_head.txt") }

// AlpacaData is the Alpaca-cleaned excerpt of $LLMPRUNER_DATA (5000 records; the paper trains on
// all 51,760 of yahma/alpaca-cleaned: point LoRA.Data at the full file to match it).
func AlpacaData() string { return dataPath("text/alpaca/alpaca_cleaned_first5000.json") }

// paperMethods are the LLaMA/Vicuna table's settings (Table 1): block-wise L2, Random, Vector,
// Element², Element¹ and channel-wise Taylor; withLoRA lists the ones recovered with LoRA.
func paperMethods(withLoRA map[string]bool) []Method {
	ms := []Method{
		{Name: "L2", Strategy: prune.Block, Criterion: importance.L2},
		{Name: "Random", Strategy: prune.Block, Criterion: importance.Random},
		{Name: "Channel", Strategy: prune.Channel, Criterion: importance.Taylor, Taylor: importance.ParamFirst, Ratio: 0.2},
		{Name: "Vector", Strategy: prune.Block, Criterion: importance.Taylor, Taylor: importance.Vectorize},
		{Name: "Element²", Strategy: prune.Block, Criterion: importance.Taylor, Taylor: importance.ParamSecond},
		{Name: "Element¹", Strategy: prune.Block, Criterion: importance.Taylor, Taylor: importance.ParamFirst},
	}
	for i := range ms {
		ms[i].WithoutFT = true
		ms[i].WithLoRA = withLoRA[ms[i].Name]
	}
	return ms
}

// BeyondMethods are the retraining-free methods after LLM-Pruner (tutorial 08): FLAP (fluctuation
// score, adaptive structure over every layer, bias compensation; ratio = fraction of the prunable
// attention+MLP parameters, FLAP's "20%"), Wanda-sp at the block setting's ratio and ranges, and
// Wanda-sp followed by the ridge re-fit (--reconstruct). Without tuning.
func BeyondMethods(flapRatio float64) []Method {
	return []Method{
		{Name: "FLAP", Strategy: prune.Block, Criterion: importance.FLAP, Structure: prune.Adaptive, Ratio: flapRatio, AllLayers: true, WithoutFT: true},
		{Name: "Wanda-sp", Strategy: prune.Block, Criterion: importance.WandaSP, WithoutFT: true},
		{Name: "Wanda-sp + reconstruct", Strategy: prune.Block, Criterion: importance.WandaSP, Reconstruct: true, WithoutFT: true},
	}
}

// LLaMA7B is the paper's LLaMA-7B (and Vicuna-7B) setting for the 20%-parameter table: block-wise
// ratio 0.25 on layers 4–30 (attention and MLP), channel-wise 0.2, 10 calibration samples of 64
// tokens, WikiText2/PTB perplexity over 128-token windows, the seven zero-shot tasks in full, and
// LoRA (r 8, alpha 16, dropout 0.05, 2 epochs of Alpaca, batch 64 / micro-batch 4, lr 1e-4, cutoff
// 256) for Channel, Vector, Element² and Element¹.
//
// Calibration: the paper draws from BookCorpus, which is not shipped; CalibText defaults to the
// Alpaca outputs — set it to a BookCorpus text dump to match. With small, the same pipeline runs on
// stories260K (5 layers: block layers 1–4, ratio 0.25, LoRA only for Element¹ for 24 steps on
// TinyStories, 5 documents per task, the first 12 KB of each perplexity text, calibration from
// TinyStories).
func LLaMA7B(name, model string, small bool) Settings {
	s := Settings{
		Name: name, Model: model, Label: "20%", Ratio: 0.25,
		AttnLayers: &prune.Range{Start: 4, End: 30}, MLPLayers: &prune.Range{Start: 4, End: 30},
		Methods: append(paperMethods(map[string]bool{"Channel": true, "Vector": true, "Element²": true, "Element¹": true}),
			BeyondMethods(0.2)...),
		CalibText: AlpacaData(), CalibN: 10, CalibLen: 64, Seed: 42,
		PPL:         []TextEval{{Column: "WikiText2", Spec: "wikitext2", SeqLen: 128}, {Column: "PTB", Spec: "ptb", SeqLen: 128}},
		ZeroShotDir: dataPath("zeroshot/lm-eval-docs"), Limit: eval.NoLimit,
		LoRA: LoRASettings{Data: AlpacaData(), Format: "alpaca", Cutoff: 256, ValSize: 2000, Epochs: 2, BatchSize: 64, MicroBatch: 4,
			LR: 1e-4, Warmup: 100, R: 8, Alpha: 16, Dropout: 0.05},
		StatsSeqLen: 64, LatencyRepeats: 3,
	}
	if small {
		// One name for every notebook that uses this preset in small mode (LLaMA-7B, Vicuna-7B):
		// they run the same computation on stories260K and share its cache.
		s.Name = "stories260K-table1-small"
		s.Label = "ratio 0.25" // the paper's label "20%" is a fraction of LLaMA-7B's parameters
		s.Model = Stories260K()
		s.AttnLayers, s.MLPLayers = &prune.Range{Start: 1, End: 4}, &prune.Range{Start: 1, End: 4}
		s.Methods = append(paperMethods(map[string]bool{"Element¹": true}), BeyondMethods(0.2)...)
		s.CalibText = TinyStoriesText()
		for i := range s.PPL {
			s.PPL[i].MaxChars = 12_000
		}
		s.Limit = 5
		s.LoRA = LoRASettings{Data: TinyStoriesText(), Format: "text", Cutoff: 128, ValSize: 16, Steps: 24, BatchSize: 8, MicroBatch: 8,
			LR: 3e-3, Warmup: 2, R: 8, Alpha: 16, Dropout: 0.05}
	}
	return s
}

// ChatGLM6B is the paper's ChatGLM-6B setting (10%): block-wise ratio 0.1 on every layer, L2,
// Random and first-order Taylor (Element¹, the paper's "Weight"), the six tasks without BoolQ,
// and LoRA recovery of Element¹ (query_key_value, dense, dense_h_to_4h, dense_4h_to_h; the
// LLaMA-7B recipe otherwise). With small, the tiny random-weight ChatGLM fixture (ChatGLMFixture: 2 layers,
// context 64) runs the same code with ratio 0.25 (one of its 4 heads), a character-level
// tokenizer (ByteTokenizer), 32-token windows, 5 documents per task and 16 LoRA steps on
// TinyStories text: its numbers only show that the path works.
func ChatGLM6B(name, model string, small bool) Settings {
	s := Settings{
		Name: name, Model: model, Label: "10%", Ratio: 0.1,
		Methods: []Method{
			{Name: "L2", Strategy: prune.Block, Criterion: importance.L2, WithoutFT: true},
			{Name: "Random", Strategy: prune.Block, Criterion: importance.Random, WithoutFT: true},
			{Name: "Element¹", Strategy: prune.Block, Criterion: importance.Taylor, Taylor: importance.ParamFirst, WithoutFT: true, WithLoRA: true},
		},
		CalibText: AlpacaData(), CalibN: 10, CalibLen: 64, Seed: 42,
		PPL:         []TextEval{{Column: "WikiText2", Spec: "wikitext2", SeqLen: 128}, {Column: "PTB", Spec: "ptb", SeqLen: 128}},
		ZeroShotDir: dataPath("zeroshot/lm-eval-docs"), Limit: eval.NoLimit,
		LoRA: LoRASettings{Data: AlpacaData(), Format: "alpaca", Cutoff: 256, ValSize: 2000, Epochs: 2, BatchSize: 64, MicroBatch: 4,
			LR: 1e-4, Warmup: 100, R: 8, Alpha: 16, Dropout: 0.05},
		Tasks:       []string{"piqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa"},
		StatsSeqLen: 64, LatencyRepeats: 3,
	}
	if small {
		s.Name += "-small"
		s.Model = ChatGLMFixture()
		s.Ratio, s.Label = 0.25, "ratio 0.25"
		s.ByteTokenizer = true
		s.CalibText, s.CalibLen = TinyStoriesText(), 32
		for i := range s.PPL {
			s.PPL[i].SeqLen, s.PPL[i].MaxChars = 32, 10_000
		}
		s.Limit = 5
		s.LoRA = LoRASettings{Data: TinyStoriesText(), Format: "text", Cutoff: 32, ValSize: 16, Steps: 16, BatchSize: 8, MicroBatch: 8,
			LR: 3e-3, Warmup: 2, R: 8, Alpha: 16, Dropout: 0.05}
		s.StatsSeqLen = 32
	}
	return s
}

// Llama3_8B is the repository's Llama-3-8B setting (more_results): block-wise ratio 0.25 on
// layers 4–30, L2 and Element¹, no tuning, WikiText2/PTB perplexity over 2048-token windows and
// WikiText2 over 128. With small, stories260K (context 512: 256-token windows stand in for 2048)
// with layers 1–4 and the first 12 KB of each text.
func Llama3_8B(name, model string, small bool) Settings {
	s := Settings{
		Name: name, Model: model, Label: "25%", Ratio: 0.25,
		AttnLayers: &prune.Range{Start: 4, End: 30}, MLPLayers: &prune.Range{Start: 4, End: 30},
		Methods: []Method{
			{Name: "L2", Strategy: prune.Block, Criterion: importance.L2, WithoutFT: true},
			{Name: "Element¹", Strategy: prune.Block, Criterion: importance.Taylor, Taylor: importance.ParamFirst, WithoutFT: true},
		},
		CalibText: AlpacaData(), CalibN: 10, CalibLen: 64, Seed: 42,
		PPL: []TextEval{{Column: "WikiText2@2048", Spec: "wikitext2", SeqLen: 2048}, {Column: "PTB@2048", Spec: "ptb", SeqLen: 2048},
			{Column: "WikiText2@128", Spec: "wikitext2", SeqLen: 128}},
		StatsSeqLen: 64, LatencyRepeats: 3,
	}
	if small {
		s.Name += "-small"
		s.Label = "ratio 0.25"
		s.Model = Stories260K()
		s.AttnLayers, s.MLPLayers = &prune.Range{Start: 1, End: 4}, &prune.Range{Start: 1, End: 4}
		s.CalibText = TinyStoriesText()
		for i := range s.PPL {
			s.PPL[i].MaxChars = 12_000
			if s.PPL[i].SeqLen == 2048 {
				s.PPL[i].SeqLen = 256
			}
		}
	}
	return s
}

// ChatGLMFixture is the tiny random-weight ChatGLM test model of the repository
// ($LLMPRUNER_REPO/lib/models/testdata/chatglm_tiny; the notebook kernel sets LLMPRUNER_REPO).
func ChatGLMFixture() string {
	return filepath.Join(os.Getenv("LLMPRUNER_REPO"), "lib/models/testdata/chatglm_tiny")
}
