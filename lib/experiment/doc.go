// Package experiment is the pipeline behind the reproduction notebooks (notebooks/*.ipynb): for
// one model it evaluates the dense model, prunes it with each method at the paper's settings,
// evaluates the pruned models, recovers the chosen ones with LoRA, evaluates them again and
// collects the statistics — one Row per model in the paper's table layout (lib/notebook).
//
// Every heavy step is cached on disk (notebook.Cache / notebook.CacheDir) under
// Settings.CacheDir, keyed by a hash of the settings, so a notebook re-run (or a later cell,
// which GoNB runs as a fresh program) reads the pruned models, adapters and scores back instead
// of recomputing them. Delete the cache directory to recompute.
//
// The same code runs the 7B models on a GPU and, in small mode (SmallMode), stories260K or the
// tiny ChatGLM fixture on a CPU in seconds; only the settings differ (see the presets in
// presets.go).
package experiment
