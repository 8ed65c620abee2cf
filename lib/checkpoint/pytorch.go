package checkpoint

import "github.com/pkg/errors"

// OpenPyTorch opens a PyTorch pytorch_model.bin file.
func OpenPyTorch(path string) (Reader, error) {
	return nil, errors.Errorf("%s: reading PyTorch .bin files is not implemented yet", path)
}
