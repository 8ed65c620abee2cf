// Package notebook holds the display helpers of llmpruner's Jupyter notebooks (GoNB kernel):
//
//   - result tables in the LLM-Pruner paper's layout (ResultTable: perplexity columns, then the
//     zero-shot tasks and their average as lib/eval renders them), with the paper's own numbers as
//     rows beside ours (paper.go), as Markdown or HTML;
//   - inline SVG plots (LinePlot for training curves, BarPlot for importance scores) that are saved
//     in the .ipynb and need no JavaScript or network to show;
//   - progress that updates in place in Jupyter (Progress, via gonbui.UpdateHTML) and falls back to
//     plain lines elsewhere;
//   - Cache and CacheDir, which keep heavy results (importance scores, pruned model directories,
//     adapters) on disk so that re-running a notebook does not recompute them.
//
// Everything but display.go is plain Go, usable and tested outside a notebook.
package notebook
