package adaptor

import (
	"encoding/binary"
	"slices"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/walimpls"
)

// The engine stores opaque entries; a WAL message is a payload plus string
// properties, so the adaptor frames both into one entry:
//
//	offset 0  frameMagic (1 byte, 'w')
//	offset 1  frameVersion (1 byte, 1)
//	          uvarint   number of properties
//	          for each property, in ascending key order:
//	            uvarint key length, key bytes, uvarint value length, value bytes
//	          payload: every remaining byte
//
// Keys and values are arbitrary byte strings. A frame is never empty (an
// empty message is two bytes and a zero), so it always satisfies the
// engine's rule that entries hold at least one byte.
const (
	frameMagic   byte = 'w'
	frameVersion byte = 1
)

// ErrMalformedFrame: an entry of the log is not a frame this version of
// the adaptor can read. The error names what is wrong; the log holds data
// another writer put there, or a newer frame version.
var ErrMalformedFrame = errors.New("malformed wal frame")

// AppendFrame appends the frame of msg to dst and returns the extended
// slice. It does not keep msg.
func AppendFrame(dst []byte, msg walimpls.Message) []byte {
	size := 2 + binary.MaxVarintLen64 + len(msg.Payload)
	keys := make([]string, 0, len(msg.Properties))
	for k, v := range msg.Properties {
		keys = append(keys, k)
		size += 2*binary.MaxVarintLen64 + len(k) + len(v)
	}
	slices.Sort(keys)
	dst = slices.Grow(dst, size)
	dst = append(dst, frameMagic, frameVersion)
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		v := msg.Properties[k]
		dst = binary.AppendUvarint(dst, uint64(len(k)))
		dst = append(dst, k...)
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		dst = append(dst, v...)
	}
	return append(dst, msg.Payload...)
}

// DecodeFrame parses a frame. The returned payload aliases b; properties
// are copies. A message without properties has nil Properties. Anything
// that is not a well-formed frame (wrong magic or version, truncated or
// overlong lengths, repeated keys, keys out of order) is an error matching
// ErrMalformedFrame.
func DecodeFrame(b []byte) (walimpls.Message, error) {
	if len(b) < 3 {
		return walimpls.Message{}, errors.Wrapf(ErrMalformedFrame, "%d bytes is shorter than any frame", len(b))
	}
	if b[0] != frameMagic {
		return walimpls.Message{}, errors.Wrapf(ErrMalformedFrame, "first byte 0x%02x is not the frame marker 0x%02x", b[0], frameMagic)
	}
	if b[1] != frameVersion {
		return walimpls.Message{}, errors.Wrapf(ErrMalformedFrame,
			"frame version %d is not supported (this adaptor reads version %d): upgrade the reader", b[1], frameVersion)
	}
	rest := b[2:]
	count, rest, err := frameUvarint(rest, "property count")
	if err != nil {
		return walimpls.Message{}, err
	}
	// Each property takes at least two bytes (two zero lengths).
	if count > uint64(len(rest)/2) {
		return walimpls.Message{}, errors.Wrapf(ErrMalformedFrame, "%d properties cannot fit in %d bytes", count, len(rest))
	}
	var props map[string]string
	if count > 0 {
		props = make(map[string]string, count)
	}
	prev := ""
	for i := range count {
		var k, v string
		if k, rest, err = frameString(rest, "key", i); err != nil {
			return walimpls.Message{}, err
		}
		if v, rest, err = frameString(rest, "value", i); err != nil {
			return walimpls.Message{}, err
		}
		if i > 0 && k <= prev {
			return walimpls.Message{}, errors.Wrapf(ErrMalformedFrame, "property %d: key %q is not after key %q", i, k, prev)
		}
		props[k], prev = v, k
	}
	return walimpls.Message{Payload: rest, Properties: props}, nil
}

func frameUvarint(b []byte, what string) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, errors.Wrapf(ErrMalformedFrame, "%s: truncated or overlong varint", what)
	}
	return v, b[n:], nil
}

func frameString(b []byte, what string, i uint64) (string, []byte, error) {
	n, b, err := frameUvarint(b, what)
	if err != nil {
		return "", nil, errors.Wrapf(err, "property %d", i)
	}
	if n > uint64(len(b)) {
		return "", nil, errors.Wrapf(ErrMalformedFrame, "property %d: %s of %d bytes overruns the frame (%d bytes left)", i, what, n, len(b))
	}
	return string(b[:n]), b[n:], nil
}
