package checkpoint

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// Standard file names in a Hugging Face model directory, in the order Open looks for them.
const (
	SafetensorsFile      = "model.safetensors"
	SafetensorsIndexFile = "model.safetensors.index.json"
	PyTorchFile          = "pytorch_model.bin"
	PyTorchIndexFile     = "pytorch_model.bin.index.json"
)

// Format names a checkpoint file format.
type Format string

// Formats recognised by DetectFormat.
const (
	FormatSafetensors Format = "safetensors"
	FormatPyTorchZip  Format = "pytorch-zip"
	FormatPyTorchOld  Format = "pytorch-legacy"
	FormatLlama2C     Format = "llama2.c"
	FormatGGUF        Format = "gguf"
	FormatUnknown     Format = ""
)

// formatIndexJSONExt ends the name of a shard index file.
const formatIndexJSONExt = ".index.json"

// Open opens a checkpoint: a Hugging Face model directory (model.safetensors,
// model.safetensors.index.json + shards, pytorch_model.bin, pytorch_model.bin.index.json + shards,
// looked for in that order), a shard index file, or a single .safetensors, PyTorch .bin or llama2.c
// .bin file, or a llama.cpp GGUF file. Single files are recognised by their content, not their
// extension. A llama2.c or GGUF file's Reader also implements ConfigSource.
func Open(path string) (Reader, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, errors.Wrap(err, "opening checkpoint")
	}
	if st.IsDir() {
		return openDir(path)
	}
	if strings.HasSuffix(path, formatIndexJSONExt) {
		return openIndexFile(path)
	}
	format, err := DetectFormat(path)
	if err != nil {
		return nil, err
	}
	switch format {
	case FormatSafetensors:
		return OpenSafetensors(path)
	case FormatPyTorchZip, FormatPyTorchOld:
		return OpenPyTorch(path)
	case FormatLlama2C:
		return OpenLlama2C(path)
	case FormatGGUF:
		return OpenGGUF(path)
	}
	return nil, errors.Errorf("%s: unrecognised checkpoint format (expected safetensors, a PyTorch zip or legacy .bin, a llama2.c .bin or GGUF)", path)
}

// OpenWithConfig opens a model's weights and its configuration: a llama2.c .bin or a GGUF file
// (the config comes from its header), or a Hugging Face directory, index or weights file whose config.json
// lies in the same directory.
func OpenWithConfig(path string) (*config.Config, Reader, error) {
	r, err := Open(path)
	if err != nil {
		return nil, nil, err
	}
	if cs, ok := r.(ConfigSource); ok {
		return cs.Config(), r, nil
	}
	dir := path
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		dir = filepath.Dir(path)
	}
	cfg, err := arch.LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		_ = r.Close()
		return nil, nil, errors.WithMessagef(err, "model %s", path)
	}
	return cfg, r, nil
}

func openDir(dir string) (Reader, error) {
	candidates := []string{SafetensorsFile, SafetensorsIndexFile, PyTorchFile, PyTorchIndexFile}
	for _, name := range candidates {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		switch name {
		case SafetensorsFile:
			return OpenSafetensors(p)
		case PyTorchFile:
			return OpenPyTorch(p)
		default:
			return openIndexFile(p)
		}
	}
	return nil, errors.Errorf("no checkpoint in directory %s: looked for %s", dir, strings.Join(candidates, ", "))
}

func openIndexFile(path string) (Reader, error) {
	if strings.HasSuffix(path, ".safetensors"+formatIndexJSONExt) {
		return openIndexed(path, OpenSafetensors)
	}
	return openIndexed(path, OpenPyTorch)
}

// legacyTorchPrefix starts a legacy torch.save file: pickle protocol 2, then the magic number
// 0x1950a86a20f9469cfc6c pickled as a 10-byte LONG1.
var legacyTorchPrefix = []byte("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19")

// DetectFormat reads the first bytes of a file and tells which checkpoint format it holds.
func DetectFormat(path string) (Format, error) {
	f, err := os.Open(path)
	if err != nil {
		return FormatUnknown, errors.Wrap(err, "opening checkpoint")
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return FormatUnknown, errors.Wrapf(err, "%s", path)
	}
	head := make([]byte, 64)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return FormatUnknown, errors.Wrapf(err, "%s: reading", path)
	}
	head = head[:n]
	switch {
	case n == 0:
		return FormatUnknown, errors.Errorf("%s: empty file", path)
	case n >= 9 && head[8] == '{' && binary.LittleEndian.Uint64(head) <= uint64(st.Size()-8):
		return FormatSafetensors, nil
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return FormatPyTorchZip, nil
	case bytes.HasPrefix(head, legacyTorchPrefix):
		return FormatPyTorchOld, nil
	case n >= 4 && binary.LittleEndian.Uint32(head) == ggufMagic:
		return FormatGGUF, nil
	case n >= 4 && binary.LittleEndian.Uint32(head) == llama2cMagic:
		return FormatLlama2C, nil
	case n >= 28 && looksLikeLlama2CV0(head, st.Size()):
		return FormatLlama2C, nil
	}
	if strings.HasSuffix(path, ".safetensors") {
		return FormatSafetensors, nil // let the reader explain what is wrong with it
	}
	return FormatUnknown, errors.Errorf("%s: unrecognised checkpoint format (%d bytes; not safetensors, PyTorch zip/legacy, GGUF, or a llama2.c .bin whose header matches its size)", path, st.Size())
}
