// Package data reads the text and instruction data llmpruner evaluates, calibrates and trains on,
// and turns it into token ids the way LLM-Pruner does:
//
//   - plain UTF-8 text files (ReadText), WikiText-2 test (ReadWikiText2) and Penn Treebank
//     (ReadPTB), resolved by name for `--data NAME=PATH` (ParseTextSet, TextSet.Read);
//   - calibration samples for importance estimation (ReadCalibrationText, CalibrationSamples,
//     ReadCalibIDs, CheckTokenIDs);
//   - Alpaca instruction data with the Alpaca-LoRA prompt template (ReadAlpaca, AlpacaPrompt,
//     TokenizeAlpaca, TrainValSplit) and plain-text training windows (TextWindows).
//
// It holds no GoMLX graph code.
package data
