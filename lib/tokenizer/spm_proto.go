package tokenizer

import (
	"math"

	"github.com/pkg/errors"
	"google.golang.org/protobuf/encoding/protowire"
)

// SentencePiece piece types (sentencepiece_model.proto, ModelProto.SentencePiece.Type).
const (
	spNormal      = 1
	spUnknown     = 2
	spControl     = 3
	spUserDefined = 4
	spByte        = 6
	spUnused      = 5
)

// SentencePiece model types (TrainerSpec.ModelType).
const (
	spModelUnigram = 1
	spModelBPE     = 2
)

// spPiece is one vocabulary entry of a SentencePiece model.
type spPiece struct {
	piece string
	score float32
	typ   int
}

// spModel holds the parts of a SentencePiece ModelProto that encoding and decoding need.
type spModel struct {
	pieces []spPiece
	// TrainerSpec.
	modelType                  int
	byteFallback               bool
	unkID, bosID, eosID, padID int
	unkSurface                 string
	treatWhitespaceAsSuffix    bool
	// NormalizerSpec.
	normalizerName         string
	precompiledCharsmap    []byte
	addDummyPrefix         bool
	removeExtraWhitespaces bool
	escapeWhitespaces      bool
}

// parseSPModel decodes a serialized SentencePiece ModelProto (the .model file). Only the fields
// the tokenizer uses are read; the rest is skipped. Defaults are those of the .proto file.
func parseSPModel(b []byte) (*spModel, error) {
	m := &spModel{
		modelType: spModelUnigram, unkID: 0, bosID: 1, eosID: 2, padID: -1, unkSurface: " \u2047 ",
		addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true,
	}
	err := walkProto(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			p, err := parseSPPiece(data)
			if err != nil {
				return errors.Wrapf(err, "piece %d", len(m.pieces))
			}
			m.pieces = append(m.pieces, p)
		case num == 2 && typ == protowire.BytesType:
			return errors.Wrap(parseTrainerSpec(data, m), "trainer_spec")
		case num == 3 && typ == protowire.BytesType:
			return errors.Wrap(parseNormalizerSpec(data, m), "normalizer_spec")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(m.pieces) == 0 {
		return nil, errors.New("no pieces in the model")
	}
	return m, nil
}

func parseSPPiece(b []byte) (spPiece, error) {
	p := spPiece{typ: spNormal}
	err := walkProto(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			p.piece = string(data)
		case num == 2 && typ == protowire.Fixed32Type:
			p.score = math.Float32frombits(uint32(v))
		case num == 3 && typ == protowire.VarintType:
			p.typ = int(v)
		}
		return nil
	})
	return p, err
}

func parseTrainerSpec(b []byte, m *spModel) error {
	return walkProto(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		if typ == protowire.VarintType {
			switch num {
			case 3:
				m.modelType = int(v)
			case 24:
				m.treatWhitespaceAsSuffix = v != 0
			case 35:
				m.byteFallback = v != 0
			case 40:
				m.unkID = int(int32(v))
			case 41:
				m.bosID = int(int32(v))
			case 42:
				m.eosID = int(int32(v))
			case 43:
				m.padID = int(int32(v))
			}
		} else if typ == protowire.BytesType && num == 44 {
			m.unkSurface = string(data)
		}
		return nil
	})
}

func parseNormalizerSpec(b []byte, m *spModel) error {
	return walkProto(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		if typ == protowire.VarintType {
			switch num {
			case 3:
				m.addDummyPrefix = v != 0
			case 4:
				m.removeExtraWhitespaces = v != 0
			case 5:
				m.escapeWhitespaces = v != 0
			}
		} else if typ == protowire.BytesType {
			switch num {
			case 1:
				m.normalizerName = string(data)
			case 2:
				m.precompiledCharsmap = append([]byte(nil), data...)
			}
		}
		return nil
	})
}

// walkProto calls visit for every field of the protobuf message b: v holds varint and fixed
// values, data the bytes of length-delimited fields.
func walkProto(b []byte, visit func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errors.Wrap(protowire.ParseError(n), "bad protobuf tag")
		}
		b = b[n:]
		var v uint64
		var data []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(b)
			v = uint64(x)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			data, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return errors.Wrapf(protowire.ParseError(n), "bad protobuf field %d", num)
		}
		b = b[n:]
		if err := visit(num, typ, v, data); err != nil {
			return err
		}
	}
	return nil
}
