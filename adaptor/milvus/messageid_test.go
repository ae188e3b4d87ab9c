package milvus

import (
	"math"
	"testing"

	"github.com/cockroachdb/errors"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus/pkg/v2/streaming/util/message"

	"github.com/woodpecker-wal/woodpecker/walimpls"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

func mid(seg, ent int64) MessageID { return NewMessageID(woodpecker.EntryID{Segment: seg, Entry: ent}) }

// TestMessageIDCompatible pins the stored form to what Milvus's own
// Woodpecker backend writes (zilliztech/woodpecker v0.1.12's
// LogMessageId.Serialize, base64-encoded; values checked against it), read
// through Milvus's own message id registry.
func TestMessageIDCompatible(t *testing.T) {
	for _, tc := range []struct {
		id     MessageID
		stored string
	}{
		{mid(0, 0), ""},
		{mid(1, 2), "CAEQAg=="},
		{mid(0, 5), "EAU="},
		{mid(3, 0), "CAM="},
		{mid(300, 1), "CKwCEAE="},
		{mid(math.MaxInt64, 0), "CP//////////fw=="},
	} {
		if got := tc.id.Marshal(); got != tc.stored {
			t.Errorf("%v.Marshal() = %q, want %q", tc.id, got, tc.stored)
		}
		pb := tc.id.IntoProto()
		if pb.GetWALName() != commonpb.WALName_WoodPecker || pb.GetId() != tc.stored {
			t.Errorf("IntoProto = %v", pb)
		}
		back, err := message.UnmarshalMessageID(&commonpb.MessageID{WALName: commonpb.WALName_WoodPecker, Id: tc.stored})
		if err != nil || !back.EQ(tc.id) || back.WALName() != message.WALNameWoodpecker {
			t.Errorf("message.UnmarshalMessageID(%q) = %v, %v; want %v", tc.stored, back, err, tc.id)
		}
		if back.(MessageID).EntryID() != tc.id.EntryID() {
			t.Errorf("EntryID() = %v", back.(MessageID).EntryID())
		}
	}
}

func TestMessageIDOrder(t *testing.T) {
	ids := []MessageID{mid(0, 0), mid(0, 9), mid(1, 0), mid(1, 1), mid(7, 0)}
	for i, a := range ids {
		for j, b := range ids {
			for _, other := range []message.MessageID{b, &b} {
				if a.LT(other) != (i < j) || a.LTE(other) != (i <= j) || a.EQ(other) != (i == j) {
					t.Errorf("%v vs %v: LT %t LTE %t EQ %t", a, b, a.LT(other), a.LTE(other), a.EQ(other))
				}
			}
		}
	}
}

func TestUnmarshalMessageIDRejects(t *testing.T) {
	for _, s := range []string{"not base64", "CA==", "GAE=", "CP///////////wE=", "CAEQAg==\n"} {
		id, err := UnmarshalMessageID(s)
		if !errors.Is(err, message.ErrInvalidMessageID) || !errors.Is(err, walimpls.ErrInvalidMessageID) {
			t.Errorf("UnmarshalMessageID(%q) = %v, %v; want message.ErrInvalidMessageID", s, id, err)
		}
	}
}
