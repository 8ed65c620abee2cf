package data

import (
	"bytes"
	"encoding/json"
	"io"
	"os"

	"github.com/pkg/errors"
)

// ReadCalibIDs reads calibration token ids given with `--calib-ids F.json`: a JSON array of
// arrays of non-negative integers, all of the same non-zero length, e.g. [[1, 306, 4658], [1, 450, 29871]].
// Check the ids against the model's vocabulary with CheckTokenIDs.
func ReadCalibIDs(path string) ([][]int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, errors.Wrapf(err, "reading calibration ids %q", path)
	}
	var seqs [][]int
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&seqs); err != nil {
		return nil, errors.Wrapf(err, "calibration ids %q: want a JSON array of arrays of token ids", path)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.Errorf("calibration ids %q: unexpected data after the JSON array", path)
	}
	if len(seqs) == 0 {
		return nil, errors.Errorf("calibration ids %q: no samples (empty array)", path)
	}
	for i, s := range seqs {
		if len(s) == 0 {
			return nil, errors.Errorf("calibration ids %q: sample %d is empty", path, i)
		}
		if len(s) != len(seqs[0]) {
			return nil, errors.Errorf("calibration ids %q: sample %d has %d tokens but sample 0 has %d; all samples must have the same length",
				path, i, len(s), len(seqs[0]))
		}
		for j, id := range s {
			if id < 0 {
				return nil, errors.Errorf("calibration ids %q: sample %d position %d: negative token id %d", path, i, j, id)
			}
		}
	}
	return seqs, nil
}

// CheckTokenIDs checks that every id of seqs is in [0, vocabSize); what names the ids in errors.
func CheckTokenIDs(seqs [][]int, vocabSize int, what string) error {
	for i, s := range seqs {
		for j, id := range s {
			if id < 0 || id >= vocabSize {
				return errors.Errorf("%s: sample %d position %d: token id %d outside the vocabulary [0, %d)", what, i, j, id, vocabSize)
			}
		}
	}
	return nil
}
