package data

import (
	"path/filepath"
	"strings"

	"github.com/pkg/errors"
)

// ReadCalibrationText reads the text that calibration samples are drawn from (`--calib PATH`):
// a .json file is read as Alpaca data (ReadAlpaca) and gives its outputs joined with blank lines,
// so that each output paragraph is a document; any other file is plain text (ReadText), whose
// blank-line separated paragraphs are the documents (see CalibrationSamples).
func ReadCalibrationText(path string) (string, error) {
	if strings.EqualFold(filepath.Ext(path), ".json") {
		recs, err := ReadAlpaca(path)
		if err != nil {
			return "", errors.Wrap(err, "calibration data")
		}
		outputs := make([]string, len(recs))
		for i, r := range recs {
			outputs[i] = r.Output
		}
		return strings.Join(outputs, "\n\n"), nil
	}
	text, err := ReadText(path)
	if err != nil {
		return "", errors.Wrap(err, "calibration data")
	}
	return text, nil
}
