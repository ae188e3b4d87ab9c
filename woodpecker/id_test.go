package woodpecker_test

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

func TestEntryIDBinaryFormSortsInLogOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := []woodpecker.EntryID{{}, {Segment: math.MaxInt64, Entry: math.MaxInt64}, {Segment: 1}, {Entry: 1}}
	for range 500 {
		ids = append(ids, woodpecker.EntryID{Segment: rng.Int64N(1 << 40), Entry: rng.Int64N(1 << 40)})
	}
	for _, a := range ids {
		for _, b := range ids[:50] {
			ab, err := a.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			bb, _ := b.MarshalBinary()
			if got, want := bytes.Compare(ab, bb), a.Compare(b); got != want {
				t.Fatalf("%v vs %v: bytes compare %d, ids compare %d", a, b, got, want)
			}
			var back woodpecker.EntryID
			if err := back.UnmarshalBinary(ab); err != nil || back != a {
				t.Fatalf("binary round trip of %v: %v %v", a, back, err)
			}
			if p, err := woodpecker.ParseEntryID(a.String()); err != nil || p != a {
				t.Fatalf("string round trip of %v: %v %v", a, p, err)
			}
		}
	}
	sorted := slices.Clone(ids)
	slices.SortFunc(sorted, woodpecker.EntryID.Compare)
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Less(sorted[i-1]) {
			t.Fatalf("sort: %v before %v", sorted[i-1], sorted[i])
		}
	}
}

func TestMalformedEntryIDsAreRejected(t *testing.T) {
	for _, s := range []string{"", "1", "1/", "/1", "1/2/3", "-1/2", "1/-2", "+1/2", " 1/2", "1/2 ", "a/b",
		"1/99999999999999999999", "0x1/2", "1.0/2"} {
		if id, err := woodpecker.ParseEntryID(s); !errors.Is(err, woodpecker.ErrInvalidID) {
			t.Errorf("ParseEntryID(%q) = %v, %v; want ErrInvalidID", s, id, err)
		}
	}
	var id woodpecker.EntryID
	for _, b := range [][]byte{nil, make([]byte, 15), make([]byte, 17), bytes.Repeat([]byte{0xff}, 16)} {
		if err := id.UnmarshalBinary(b); !errors.Is(err, woodpecker.ErrInvalidID) {
			t.Errorf("UnmarshalBinary(%x): %v, want ErrInvalidID", b, err)
		}
	}
	if _, err := (woodpecker.EntryID{Segment: -1}).MarshalBinary(); !errors.Is(err, woodpecker.ErrInvalidID) {
		t.Errorf("MarshalBinary of a negative id: %v", err)
	}
}

func FuzzParseEntryID(f *testing.F) {
	for _, s := range []string{"0/0", "12/34", "9223372036854775807/1", "-1/0", "1//2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := woodpecker.ParseEntryID(s)
		if err != nil {
			if !errors.Is(err, woodpecker.ErrInvalidID) {
				t.Fatalf("ParseEntryID(%q): untyped error %v", s, err)
			}
			return
		}
		if again, err := woodpecker.ParseEntryID(id.String()); !id.Valid() || err != nil || again != id {
			t.Fatalf("ParseEntryID(%q) = %v, which does not round-trip: %v %v", s, id, again, err)
		}
	})
}
