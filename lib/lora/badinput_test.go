package lora

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/data"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/models"
)

// letterTok maps 'a'…'z' to ids 3…28 and everything else to 29; BOS 1, EOS 2 (vocab 40, like the
// tiny model).
type letterTok struct{}

func (letterTok) Encode(text string) ([]int, error) {
	ids := make([]int, 0, len(text))
	for _, c := range text {
		if c >= 'a' && c <= 'z' {
			ids = append(ids, int(c-'a')+3)
		} else {
			ids = append(ids, 29)
		}
	}
	return ids, nil
}
func (letterTok) Decode(ids []int) string { return "" }
func (letterTok) Piece(id int) string     { return "" }
func (letterTok) BOS() int                { return 1 }
func (letterTok) EOS() int                { return 2 }
func (letterTok) VocabSize() int          { return 40 }

func writeFile(t *testing.T, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantErr(t *testing.T, what string, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("%s: error %q does not mention %q", what, err, f)
		}
	}
}

func TestBadData(t *testing.T) {
	opts := DataOptions{CutoffLen: 64}
	_, err := LoadDataset(letterTok{}, writeFile(t, "bad.json", `[{"instruction": "a", "output": "b"}, {"instruction": 3, "output": "x"}]`), "", opts)
	wantErr(t, "malformed record", err, "record 1", "instruction")
	_, err = LoadDataset(letterTok{}, writeFile(t, "trunc.json", `[{"instruction": "a", "output": "b"}`), FormatAlpaca, opts)
	wantErr(t, "truncated JSON", err, "trunc.json")
	_, err = LoadDataset(letterTok{}, writeFile(t, "empty.json", `[]`), "", opts)
	wantErr(t, "empty Alpaca", err, "no records")
	_, err = LoadDataset(letterTok{}, writeFile(t, "empty.txt", ``), "", opts)
	wantErr(t, "empty text", err, "empty")
	_, err = LoadDataset(letterTok{}, writeFile(t, "short.txt", `only a few words`), "", opts)
	wantErr(t, "text shorter than a window", err, "shorter than one window")
	_, err = LoadDataset(letterTok{}, writeFile(t, "x.txt", `abc`), "csv", opts)
	wantErr(t, "unknown format", err, "unknown data format")
	// Every prompt is longer than the cutoff: all records skipped.
	recs := `[{"instruction": "write a poem", "output": "roses"}, {"instruction": "say hi", "output": "hi"}]`
	_, err = LoadDataset(letterTok{}, writeFile(t, "long.json", recs), "", DataOptions{CutoffLen: 20})
	wantErr(t, "cutoff shorter than the prompt", err, "skipped", "lora.DataOptions.CutoffLen 20")
	// Some prompts fit: they are kept, the others counted.
	recs = `[{"instruction": "write a poem", "output": "roses"}, {"instruction": "hi", "output": "` + strings.Repeat("x", 10) + `"},
	         {"instruction": "` + strings.Repeat("long ", 40) + `", "output": "no"}]`
	ds, err := LoadDataset(letterTok{}, writeFile(t, "mixed.json", recs), "", DataOptions{CutoffLen: 200})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Skipped != 1 || len(ds.Train) != 2 {
		t.Errorf("mixed records: %d train, %d skipped; want 2 and 1", len(ds.Train), ds.Skipped)
	}
	for _, ex := range ds.Train {
		if ex.Labels[0] != data.IgnoreLabel || ex.Labels[len(ex.Labels)-1] != 2 {
			t.Errorf("Alpaca labels should mask the prompt and end with EOS: %v", ex.Labels)
		}
	}
	_, err = PrepareText(letterTok{}, strings.Repeat("abc ", 100), DataOptions{CutoffLen: 64, ValSize: 6})
	wantErr(t, "val size too large", err, "validation size 6", "lora.DataOptions.ValSize 6")
}

func TestBadLoRAConfig(t *testing.T) {
	m := tinyModel(t, 41)
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{R: 0, Alpha: 16, Targets: AllTargets}, "lora.Config.R 0"},
		{Config{R: -2, Alpha: 16, Targets: AllTargets}, "must be positive"},
		{Config{R: 8, Alpha: 16, Targets: []string{"q", "lm_head"}}, `unknown LoRA target module "lm_head"`},
		{Config{R: 8, Alpha: 16, Targets: []string{"q", "query_key_value"}}, `unknown LoRA target module "query_key_value" for llama models (want q,k,v,o,gate,up,down or q_proj`},
		{Config{R: 8, Alpha: 16, Dropout: 1, Targets: AllTargets}, "dropout"},
		{Config{R: 8, Alpha: 0, Targets: AllTargets}, "alpha"},
	} {
		_, err := Attach(m, c.cfg, 1)
		wantErr(t, c.want, err, c.want)
	}
	if a, _ := AdapterOf(m); a != nil {
		t.Error("a failed Attach left an adapter behind")
	}
	_, err := Finetune(context.Background(), m, patternData(10, 8), TrainOptions{LoRA: Config{R: 8, Alpha: 16, Targets: []string{"qq"}}, BatchSize: 4})
	wantErr(t, "Finetune with a bad target", err, `unknown LoRA target module "qq"`)
	_, err = Finetune(context.Background(), m, patternData(10, 8), TrainOptions{BatchSize: 6, MicroBatch: 4})
	wantErr(t, "batch not a multiple", err, "not a multiple")
	_, err = Finetune(context.Background(), m, patternData(10, 8), TrainOptions{BatchSize: 64})
	wantErr(t, "batch larger than data", err, "fewer than one batch")
	_, err = Finetune(context.Background(), m, &Dataset{}, TrainOptions{})
	wantErr(t, "no data", err, "no training examples")
	_, err = Finetune(context.Background(), m, patternData(10, 8), TrainOptions{BatchSize: 4, MaxSteps: 1, EvalEvery: 1,
		ExtraEval: []EvalSet{{Name: "short", IDs: []int{1, 2, 3}}}})
	wantErr(t, "extra evaluation text shorter than a window", err, "perplexity of short", "shorter than one window (lora.TrainOptions.PPLSeqLen 128)")
	_, err = Finetune(context.Background(), m, &Dataset{Train: []Example{{IDs: []int{1, 99}}}}, TrainOptions{BatchSize: 1, MicroBatch: 1})
	wantErr(t, "token outside the vocabulary", err, "outside the vocabulary")
	_, err = Finetune(context.Background(), m, patternData(10, 8), TrainOptions{Resume: t.TempDir(), BatchSize: 4})
	wantErr(t, "resume from a non-checkpoint", err, "not a checkpoint")
}

// TestAdapterForOtherShapes: an adapter trained on the tiny model does not load into a model
// whose layers were pruned differently, into a shallower model, or when it is malformed.
func TestAdapterForOtherShapes(t *testing.T) {
	src := tinyModel(t, 51)
	if _, err := Attach(src, DefaultConfig(), 1); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := SaveAdapter(src, dir); err != nil {
		t.Fatal(err)
	}
	other := groupstest.RandomModel(t, groupstest.Config(t, map[string]any{"hidden_size": 16, "intermediate_size": 12,
		"num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 4, "head_dim": 4, "vocab_size": 40}), 1, 0.3)
	_, err := LoadAdapter(other, dir)
	wantErr(t, "different per-layer shapes", err, "does not fit the model",
		"base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight is [8 8]", "needs [16, 8]")
	if a, _ := AdapterOf(other); a != nil {
		t.Error("a failed LoadAdapter left an adapter behind")
	}
	shallow := groupstest.RandomModel(t, groupstest.Config(t, map[string]any{"hidden_size": 16, "intermediate_size": 12,
		"num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 4, "head_dim": 4, "vocab_size": 40}), 1, 0.3)
	_, err = LoadAdapter(shallow, dir)
	wantErr(t, "fewer layers", err, "model.layers.2.self_attn.q_proj: the model has no such projection")

	cfgPath := filepath.Join(dir, ConfigFile)
	orig, _ := os.ReadFile(cfgPath)
	for _, c := range []struct{ from, to, want string }{
		{`"q_proj"`, `"lm_head"`, `unknown LoRA target module "lm_head"`},
		{`"r": 8`, `"r": 0`, "adapter_config.json: r 0: the LoRA rank must be positive"},
		{`"peft_type": "LORA"`, `"peft_type": "PREFIX_TUNING"`, "peft_type"},
		{`"r": 8`, `"r": 4`, "needs [4, 16]"},
		{`"bias": "none"`, `"bias": "all"`, "bias"},
	} {
		if err := os.WriteFile(cfgPath, []byte(strings.Replace(string(orig), c.from, c.to, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadAdapter(tinyModel(t, 51), dir)
		wantErr(t, c.to, err, c.want)
	}
	if err := os.WriteFile(cfgPath, []byte(`{"peft_type": "LORA", `), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadAdapter(tinyModel(t, 51), dir)
	wantErr(t, "malformed adapter_config.json", err, "adapter_config.json")
	_, err = LoadAdapter(tinyModel(t, 51), t.TempDir())
	wantErr(t, "missing directory content", err, "adapter_config.json")
	_ = models.VarPath
}
