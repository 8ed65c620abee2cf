package data

import (
	"math/rand/v2"

	"github.com/pkg/errors"
)

// TrainValSplit splits the record indices 0..n-1 into a training and a validation set of valSize
// indices, as post_training.py's `train_test_split(test_size=val_set_size, shuffle=True, seed=42)`:
// a seeded permutation whose first valSize entries are the validation set and the rest the
// training set (both in permutation order). The permutation comes from math/rand/v2's PCG
// seeded with seed: deterministic, but not the same draw as Hugging Face datasets' numpy
// generator. valSize 0 means no validation set.
func TrainValSplit(n, valSize int, seed int64) (train, val []int, err error) {
	if n <= 0 {
		return nil, nil, errors.Errorf("train/validation split: no records")
	}
	if valSize < 0 || valSize >= n {
		return nil, nil, errors.Errorf("train/validation split: validation size %d must be in [0, %d) for %d records", valSize, n, n)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x73706c6974)) // second word: "split"
	perm := rng.Perm(n)
	return perm[valSize:], perm[:valSize], nil
}
