package adaptor

import (
	"bytes"
	"encoding/hex"
	"maps"
	"testing"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/walimpls"
)

func TestFrameRoundTrip(t *testing.T) {
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	for _, tc := range []struct {
		name string
		msg  walimpls.Message
	}{
		{"empty", walimpls.Message{}},
		{"payload", walimpls.Message{Payload: []byte("hello")}},
		{"properties", walimpls.Message{Properties: map[string]string{"b": "2", "a": "1"}}},
		{"both", walimpls.Message{Payload: every, Properties: map[string]string{"": "", "k\x00": "v\xff"}}},
		{"long-key", walimpls.Message{Payload: []byte{0}, Properties: map[string]string{string(every): string(bytes.Repeat(every, 3))}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := AppendFrame(nil, tc.msg)
			got, err := DecodeFrame(b)
			if err != nil {
				t.Fatalf("DecodeFrame: %v", err)
			}
			if !bytes.Equal(got.Payload, tc.msg.Payload) || len(got.Properties) != len(tc.msg.Properties) || !maps.Equal(got.Properties, tc.msg.Properties) {
				t.Fatalf("round trip: got %+v, want %+v", got, tc.msg)
			}
			if len(tc.msg.Properties) == 0 && got.Properties != nil {
				t.Errorf("no properties decode as %v, want nil", got.Properties)
			}
			// Appending to a prefix keeps the prefix.
			if pre := AppendFrame([]byte("pre"), tc.msg); !bytes.Equal(pre, append([]byte("pre"), b...)) {
				t.Errorf("AppendFrame with a prefix = %x", pre)
			}
		})
	}
}

// TestFrameGolden pins the encoding: frames written by this version must be
// read by every later one.
func TestFrameGolden(t *testing.T) {
	for _, tc := range []struct {
		msg walimpls.Message
		hex string
	}{
		{walimpls.Message{}, "770100"},
		{walimpls.Message{Payload: []byte("hi")}, "7701006869"},
		{walimpls.Message{Payload: []byte("p"), Properties: map[string]string{"b": "", "a": "xy"}}, "770102" + "0161" + "027879" + "0162" + "00" + "70"},
	} {
		if got := hex.EncodeToString(AppendFrame(nil, tc.msg)); got != tc.hex {
			t.Errorf("AppendFrame(%+v) = %s, want %s", tc.msg, got, tc.hex)
		}
	}
}

func TestFrameMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		hex  string
	}{
		{"empty", ""},
		{"short", "7701"},
		{"bad-magic", "780100"},
		{"future-version", "770200"},
		{"count-overlong-varint", "770180808080808080808080800100"},
		{"count-truncated-varint", "770180"},
		{"count-too-large", "7701056161"},
		{"key-overruns", "7701010561"},
		{"value-missing", "770101016162"},
		{"value-overruns", "77010101610561"},
		{"duplicate-key", "77010201610001610000"},
		{"keys-out-of-order", "77010201620001610000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := hex.DecodeString(tc.hex)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := DecodeFrame(b)
			if !errors.Is(err, ErrMalformedFrame) {
				t.Fatalf("DecodeFrame(%s) = %+v, %v; want ErrMalformedFrame", tc.hex, msg, err)
			}
		})
	}
}

func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte{})
	f.Add(AppendFrame(nil, walimpls.Message{Payload: []byte("x"), Properties: map[string]string{"a": "b", "c": ""}}))
	f.Add([]byte("\x77\x01\x80\x80\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, err := DecodeFrame(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedFrame) {
				t.Fatalf("error %v does not match ErrMalformedFrame", err)
			}
			return
		}
		again, err := DecodeFrame(AppendFrame(nil, msg))
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		if !bytes.Equal(again.Payload, msg.Payload) || !maps.Equal(again.Properties, msg.Properties) {
			t.Fatalf("re-encoding changed the message: %+v then %+v", msg, again)
		}
	})
}
