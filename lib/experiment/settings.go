package experiment

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/prune"
	"github.com/pkg/errors"
)

// SmallEnv is the environment variable that forces small mode (1) or full mode (0).
const SmallEnv = "LLMPRUNER_NOTEBOOK_SMALL"

// CacheEnv overrides the root of the notebook caches (default: the user cache directory's
// llmpruner/notebooks).
const CacheEnv = "LLMPRUNER_CACHE"

// SmallMode decides whether a reproduction notebook runs its small configuration: true when
// LLMPRUNER_NOTEBOOK_SMALL=1; false when it is 0; otherwise true unless model is a local path that
// exists (a Hugging Face repo id therefore needs LLMPRUNER_NOTEBOOK_SMALL=0).
func SmallMode(model string) bool {
	switch os.Getenv(SmallEnv) {
	case "1", "true", "yes":
		return true
	case "0", "false", "no":
		return false
	}
	_, err := os.Stat(model)
	return err != nil
}

// TextEval is one perplexity column.
type TextEval struct {
	// Column is the table header ("WikiText2").
	Column string
	// Spec is a data.ParseTextSet spec: "wikitext2", "ptb", "NAME=PATH", ….
	Spec string
	// SeqLen is the window length (LLM-Pruner: 128).
	SeqLen int
	// MaxChars keeps only the first MaxChars characters of the text (0 = all): small mode.
	MaxChars int
}

// Method is one pruning setting of the paper's table.
type Method struct {
	// Name is the paper's label: "L2", "Random", "Channel", "Vector", "Element¹", "Element²".
	Name       string
	Strategy   prune.Strategy
	Criterion  importance.Criterion
	Taylor     importance.TaylorMode
	WithoutFT  bool    // report the pruned model without tuning
	WithLoRA   bool    // also recover it with LoRA and report that
	Ratio      float64 // pruning ratio of this method (0 = Settings.Ratio), e.g. the paper's channel-wise 0.2
	RoundTo    int     // keep multiples of this many channels (0 = off)
	Iterations int     // iterative pruning steps (0 = 1)
	// Structure, Reconstruct and AllLayers are for the methods beyond LLM-Pruner (BeyondMethods):
	// FLAP's adaptive structure, the ridge re-fit after the selection, and pruning every layer
	// instead of Settings' ranges.
	Structure   prune.Structure
	Reconstruct bool
	AllLayers   bool
}

// LoRASettings configure the recovery runs (lora.Finetune).
type LoRASettings struct {
	Data       string // training data file (Alpaca .json or plain text)
	Format     string // "alpaca" | "text" | "" (by extension)
	Cutoff     int    // tokens per example (256)
	ValSize    int    // held-out examples for the best-checkpoint choice (0 = none)
	Steps      int    // optimizer steps (0: Epochs)
	Epochs     int    // passes over the data when Steps is 0 (2, the paper's Alpaca setting)
	BatchSize  int    // examples per step (64)
	MicroBatch int    // examples per forward/backward (4)
	LR         float64
	Warmup     int
	R          int     // rank (8)
	Alpha      float64 // (16)
	Dropout    float64 // (0.05)
}

// Settings are everything one reproduction run depends on.
type Settings struct {
	// Name labels the experiment (cache sub-directory, table names).
	Name string
	// Model is a Hugging Face directory, a llama2.c .bin or a repo id; Tokenizer overrides the
	// tokenizer found beside it.
	Model, Tokenizer string
	// ByteTokenizer replaces the model's tokenizer by ByteTokenizer (the tiny random-weight
	// ChatGLM fixture has none of its own).
	ByteTokenizer bool
	// Label names the pruned fraction in row names, as the paper does ("20%": block ratio 0.25 on
	// layers 4–30 removes 20% of LLaMA-7B's parameters).
	Label string
	// Ratio and the layer ranges are prune.Options' (block-wise; Channel uses Ratio only).
	Ratio                 float64
	AttnLayers, MLPLayers *prune.Range
	Methods               []Method
	// CalibText is the calibration text (data.ReadCalibrationText), CalibN samples of CalibLen
	// tokens (the paper: 10 × 64 from BookCorpus).
	CalibText        string
	CalibN, CalibLen int
	Seed             int64
	PPL              []TextEval
	// ZeroShotDir holds <task>.jsonl; Tasks are lm-eval names (nil = all seven); Limit documents
	// per task (eval.NoLimit = all).
	ZeroShotDir string
	Tasks       []string
	Limit       int
	LoRA        LoRASettings
	// StatsSeqLen is the token count of the MACs and latency columns (the paper: 64); Latency
	// also measures the median forward latency (LatencyRepeats runs).
	StatsSeqLen    int
	LatencyRepeats int
	// CacheDir holds the cached steps (default: CacheRoot()/Name-<hash of the settings>).
	CacheDir string `json:"-"`
}

// CacheRoot is $LLMPRUNER_CACHE, else <user cache dir>/llmpruner/notebooks.
func CacheRoot() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "llmpruner", "notebooks")
}

// Hash is a short digest of the settings (without CacheDir): the cache key prefix.
func (s *Settings) Hash() string {
	b, _ := json.Marshal(s)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])[:12]
}

// Validate checks the settings and fills CacheDir.
func (s *Settings) Validate() error {
	if s.Name == "" || strings.ContainsAny(s.Name, `/\ `) {
		return errors.Errorf("experiment: Name %q must be a plain non-empty name", s.Name)
	}
	if s.Model == "" {
		return errors.New("experiment: no Model")
	}
	if len(s.Methods) == 0 {
		return errors.New("experiment: no Methods")
	}
	for _, m := range s.Methods {
		if !m.WithoutFT && !m.WithLoRA {
			return errors.Errorf("experiment: method %q reports nothing (set WithoutFT and/or WithLoRA)", m.Name)
		}
		if m.WithLoRA && s.LoRA.Data == "" {
			return errors.Errorf("experiment: method %q asks for LoRA but LoRA.Data is empty", m.Name)
		}
	}
	if s.CalibN <= 0 || s.CalibLen <= 1 || s.CalibText == "" {
		return errors.Errorf("experiment: calibration needs CalibText, CalibN > 0 and CalibLen > 1 (got %q, %d, %d)", s.CalibText, s.CalibN, s.CalibLen)
	}
	if s.CacheDir == "" {
		s.CacheDir = filepath.Join(CacheRoot(), s.Name+"-"+s.Hash())
	}
	return nil
}

// key is a cache key for a step of a method.
func key(parts ...string) string {
	k := strings.Join(parts, "_")
	r := strings.NewReplacer("¹", "1", "²", "2", " ", "-", "/", "-", "%", "pct", "(", "", ")", "")
	return r.Replace(k)
}
