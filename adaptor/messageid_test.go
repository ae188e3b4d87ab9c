package adaptor

import (
	"encoding/base64"
	"math"
	"testing"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/walimpls"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

func id(seg, ent int64) MessageID { return NewMessageID(woodpecker.EntryID{Segment: seg, Entry: ent}) }

func TestMessageIDOrder(t *testing.T) {
	ids := []MessageID{id(0, 0), id(0, 1), id(0, 1000), id(1, 0), id(1, 1), id(2, 0), id(math.MaxInt64, math.MaxInt64)}
	for i, a := range ids {
		for j, b := range ids {
			if a.LT(b) != (i < j) || a.LTE(b) != (i <= j) || a.EQ(b) != (i == j) {
				t.Errorf("%v vs %v: LT %t LTE %t EQ %t", a, b, a.LT(b), a.LTE(b), a.EQ(b))
			}
			pb := &b
			if a.LT(pb) != (i < j) || a.EQ(pb) != (i == j) {
				t.Errorf("%v vs pointer %v: LT %t EQ %t", a, b, a.LT(pb), a.EQ(pb))
			}
		}
	}
	var nilID *MessageID
	if id(0, 0).EQ(nilID) || id(0, 0).LT(nilID) || id(0, 0).LTE(nil) {
		t.Error("comparison with a nil id is true")
	}
}

// TestMessageIDGolden pins the Marshal form to the one Milvus's own
// Woodpecker backend stores: base64 of protobuf {1: segment, 2: entry}.
func TestMessageIDGolden(t *testing.T) {
	for _, tc := range []struct {
		id   MessageID
		want string
	}{
		{id(0, 0), ""},
		{id(1, 2), "CAEQAg=="},
		{id(0, 5), "EAU="},
		{id(3, 0), "CAM="},
		{id(300, 1), "CKwCEAE="},
		{id(math.MaxInt64, 0), "CP//////////fw=="},
	} {
		if got := tc.id.Marshal(); got != tc.want {
			t.Errorf("%v.Marshal() = %q, want %q", tc.id, got, tc.want)
		}
		back, err := UnmarshalMessageID(tc.want)
		if err != nil || back != tc.id {
			t.Errorf("UnmarshalMessageID(%q) = %v, %v; want %v", tc.want, back, err, tc.id)
		}
		viaRegistry, err := walimpls.UnmarshalMessageID(walimpls.WALNameWoodpecker, tc.want)
		if err != nil || !viaRegistry.EQ(tc.id) {
			t.Errorf("registry unmarshal of %q = %v, %v", tc.want, viaRegistry, err)
		}
	}
}

func TestUnmarshalMessageIDLenient(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	for _, tc := range []struct {
		name string
		data []byte
		want MessageID
	}{
		{"reversed-fields", []byte{0x10, 0x02, 0x08, 0x01}, id(1, 2)},
		{"explicit-zeros", []byte{0x08, 0x00, 0x10, 0x00}, id(0, 0)},
		{"non-minimal-varint", []byte{0x08, 0x81, 0x00}, id(1, 0)},
	} {
		got, err := UnmarshalMessageID(b64(tc.data))
		if err != nil || got != tc.want {
			t.Errorf("%s: UnmarshalMessageID = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

// invalidIDs are strings UnmarshalMessageID must reject; the conformance
// run uses them too.
var invalidIDs = []string{
	"not base64",
	"CAEQAg",           // missing padding
	"CAEQAg==\n",       // line break
	"CA==",             // tag without value
	"CIA=",             // truncated varint
	"GAE=",             // field 3
	"CgEA",             // field 1 as bytes
	"CAEIAg==",         // field 1 twice
	"CP///////////wE=", // segment -1
	"EP///////////wE=", // entry -1
	"CICAgICAgICAgIAB", // varint longer than 10 bytes
	"AA==",             // field 0
	"CAEQAgA=",         // trailing zero byte
}

func TestUnmarshalMessageIDRejects(t *testing.T) {
	for _, s := range invalidIDs {
		got, err := UnmarshalMessageID(s)
		if !errors.Is(err, walimpls.ErrInvalidMessageID) {
			t.Errorf("UnmarshalMessageID(%q) = %v, %v; want ErrInvalidMessageID", s, got, err)
		}
	}
}

func FuzzUnmarshalMessageID(f *testing.F) {
	f.Add("")
	f.Add("CAEQAg==")
	for _, s := range invalidIDs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := UnmarshalMessageID(s)
		if err != nil {
			if !errors.Is(err, walimpls.ErrInvalidMessageID) {
				t.Fatalf("error %v does not match ErrInvalidMessageID", err)
			}
			return
		}
		back, err := UnmarshalMessageID(got.Marshal())
		if err != nil || back != got {
			t.Fatalf("%v does not survive Marshal: %v, %v", got, back, err)
		}
	})
}
