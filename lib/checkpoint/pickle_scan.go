package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"

	"github.com/pkg/errors"
)

// pickleArg says how a pickle opcode's argument is encoded.
type pickleArg int8

const (
	argNone     pickleArg = iota
	argFixed1             // 1 byte
	argFixed2             // 2 bytes
	argFixed4             // 4 bytes
	argFixed8             // 8 bytes
	argLen1               // 1-byte length, then data
	argLen4               // 4-byte length, then data
	argLen8               // 8-byte length, then data
	argFrame              // 8-byte frame length (the frame's opcodes follow)
	argLine               // one newline-terminated line
	argTwoLines           // two newline-terminated lines
)

// pickleOpcodes lists every opcode of pickle protocols 0-5 with its argument encoding.
var pickleOpcodes = func() map[byte]pickleArg {
	m := map[byte]pickleArg{}
	for _, op := range []byte("(012N}a b d]elo R s t)u Q\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98.") {
		if op != ' ' {
			m[op] = argNone
		}
	}
	for op, a := range map[byte]pickleArg{
		'K': argFixed1, 'q': argFixed1, 'h': argFixed1, 0x80: argFixed1, 0x82: argFixed1,
		'M': argFixed2, 0x83: argFixed2,
		'J': argFixed4, 'r': argFixed4, 'j': argFixed4, 0x84: argFixed4,
		'G': argFixed8,
		'U': argLen1, 0x8c: argLen1, 'C': argLen1, 0x8a: argLen1,
		'T': argLen4, 'X': argLen4, 'B': argLen4, 0x8b: argLen4,
		0x8d: argLen8, 0x8e: argLen8, 0x96: argLen8,
		0x95: argFrame,
		'I':  argLine, 'L': argLine, 'S': argLine, 'V': argLine, 'F': argLine, 'P': argLine, 'g': argLine, 'p': argLine,
		'c': argTwoLines, 'i': argTwoLines,
	} {
		m[op] = a
	}
	return m
}()

// scanPickle reads exactly one pickle (up to and including its STOP opcode) from r and returns
// its bytes. It checks every length prefix against the bytes that can remain (limit minus what
// was read), so a corrupt length cannot make the unpickler allocate gigabytes.
func scanPickle(r *bufio.Reader, limit int64) ([]byte, error) {
	var out bytes.Buffer
	remaining := func() int64 { return limit - int64(out.Len()) }
	take := func(n int64) ([]byte, error) {
		if n < 0 || n > remaining() {
			return nil, errors.Errorf("pickle length %d at byte %d exceeds the data left", n, out.Len())
		}
		start := out.Len()
		if _, err := io.CopyN(&out, r, n); err != nil {
			return nil, errors.Errorf("pickle truncated at byte %d", out.Len())
		}
		return out.Bytes()[start:], nil
	}
	line := func() error {
		for {
			b, err := take(1)
			if err != nil {
				return err
			}
			if b[0] == '\n' {
				return nil
			}
		}
	}
	for {
		opb, err := take(1)
		if err != nil {
			return nil, err
		}
		op := opb[0]
		kind, ok := pickleOpcodes[op]
		if !ok {
			return nil, errors.Errorf("invalid pickle opcode 0x%02x at byte %d", op, out.Len()-1)
		}
		var n int64
		switch kind {
		case argNone:
			if op == '.' {
				return out.Bytes(), nil
			}
			continue
		case argFixed1, argFixed2, argFixed4, argFixed8:
			_, err = take(map[pickleArg]int64{argFixed1: 1, argFixed2: 2, argFixed4: 4, argFixed8: 8}[kind])
		case argLen1:
			var b []byte
			if b, err = take(1); err == nil {
				_, err = take(int64(b[0]))
			}
		case argLen4:
			var b []byte
			if b, err = take(4); err == nil {
				n = int64(binary.LittleEndian.Uint32(b))
				if op == 0x8b { // LONG4 is signed
					n = int64(int32(uint32(n)))
				}
				_, err = take(n)
			}
		case argLen8, argFrame:
			var b []byte
			if b, err = take(8); err == nil {
				u := binary.LittleEndian.Uint64(b)
				if u > uint64(remaining()) {
					err = errors.Errorf("pickle length %d at byte %d exceeds the data left", u, out.Len())
				} else if kind == argLen8 {
					_, err = take(int64(u))
				}
			}
		case argLine:
			err = line()
		case argTwoLines:
			if err = line(); err == nil {
				err = line()
			}
		}
		if err != nil {
			return nil, err
		}
	}
}
