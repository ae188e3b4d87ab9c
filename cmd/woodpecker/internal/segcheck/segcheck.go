// Package segcheck decodes the stored form of one segment (a local segment
// file, or a segment's objects in an object store), validates every block
// and the seal record, and reports what it found: each block with its
// location and entry range, corruption precisely located, and what is not
// corruption but worth knowing (a torn tail a crash left, a fence, blocks a
// fenced writer left above the fence).
//
// The checks need no server: the callers read the bytes (CheckFile takes an
// io.ReaderAt; CheckObjects an object store) and pass what the metadata in
// etcd says about the segment. Functions are safe for concurrent use on
// distinct inputs.
package segcheck

import (
	"fmt"
	"strings"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/segment"
)

// Expect is what etcd says about the segment.
type Expect struct {
	LogID     int64
	SegmentID int64
	// Sealed segments must hold exactly Blocks blocks ending at LastEntry
	// (-1: empty). An open segment may end anywhere, in a torn block.
	Sealed    bool
	Blocks    int64
	LastEntry int64
	// Generation is the sealed segment's layout generation: 0 as the
	// writer left it, g > 0 after compaction g (object stores only).
	Generation int64
}

// Location says where a block or record lies.
type Location struct {
	// File names a local file, Key an object.
	File string
	Key  string
	// Offset is where in the file or object it starts; -1 means the
	// whole file (a seal or fence file). A block object has offset 0; a
	// block inside a merged object, its offset there.
	Offset int64
}

// String returns "<file or key> at offset <n>", or the file or key alone
// (for a whole object or file).
func (l Location) String() string {
	name := l.File
	if l.Key != "" {
		name = l.Key
	}
	if l.Offset < 0 || (l.Key != "" && l.Offset == 0) {
		return name
	}
	return fmt.Sprintf("%s at offset %d", name, l.Offset)
}

// Block is one block slot as found in storage.
type Block struct {
	// No is the block's number: from the object name, or its position in
	// the file (for a file region that is not a block: the number expected
	// there).
	No  int64
	Loc Location
	// Size is the stored size in bytes.
	Size int64
	// Header is valid when Err is nil (or the error is in the body only).
	Header    segment.BlockHeader
	HeaderOK  bool
	EntrySize int64 // payload bytes of its entries
	// Entries holds the payloads when Options.KeepEntries.
	Entries [][]byte
	// Fence is set for a fence object in a block slot.
	Fence *segment.FenceInfo
	// Err is why the block failed validation (nil: valid).
	Err error
}

// Problem is corruption: data that a reader or recovery needs and cannot
// use.
type Problem struct {
	Block int64 // -1 when not about one block
	Loc   Location
	What  string
}

// Report is the outcome of checking one segment.
type Report struct {
	Expect Expect
	Blocks []Block
	// Seal is the decoded seal record, if one is stored and valid.
	Seal *segment.SealRecord
	// SealLoc is where the seal record is (empty Key and File: none).
	SealLoc Location
	// Entries counts the entries of the valid blocks the segment holds
	// (up to its end: the sealed block count, or the first gap).
	Entries    int64
	FirstEntry int64
	LastEntry  int64 // -1 when none
	Problems   []Problem
	// Notes are findings that are not corruption.
	Notes []string

	inLayout map[string]bool // keys of a compacted layout's objects
}

// OK reports whether no corruption was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Options adjust a check.
type Options struct {
	// KeepEntries keeps each block's payloads in Block.Entries.
	KeepEntries bool
}

func (r *Report) problem(block int64, loc Location, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{Block: block, Loc: loc, What: fmt.Sprintf(format, args...)})
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// describeErr says what is wrong with a whole object (a block object, a
// seal record or a fence).
func describeErr(err error) string { return describeAt(err, -1, "") }

// describeAt says what is wrong with a block that lies at base in a file
// or object (base -1: the block is the whole object), with the
// CorruptError's offset also given from the start of the file or object
// (named by offsetName, "file offset").
func describeAt(err error, base int64, offsetName string) string {
	var ce *segment.CorruptError
	if !errors.As(err, &ce) {
		return err.Error()
	}
	switch {
	case ce.Offset < 0:
		return fmt.Sprintf("corrupt %s: %s", ce.Object, ce.Reason)
	case base >= 0:
		return fmt.Sprintf("corrupt %s at byte %d of the block (%s %d): %s", ce.Object, ce.Offset, offsetName, base+ce.Offset, ce.Reason)
	default:
		return fmt.Sprintf("corrupt %s at byte %d: %s", ce.Object, ce.Offset, ce.Reason)
	}
}

// checkSeal validates a seal record found for the segment.
func (r *Report) checkSeal(data []byte, loc Location) {
	r.SealLoc = loc
	rec, err := segment.DecodeSeal(data)
	if err != nil {
		r.problem(-1, loc, "seal record: %s", describeErr(err))
		return
	}
	r.Seal = &rec
	ex := r.Expect
	if rec.LogID != ex.LogID || rec.SegmentID != ex.SegmentID {
		r.problem(-1, loc, "seal record belongs to log %d segment %d", rec.LogID, rec.SegmentID)
		return
	}
	if !ex.Sealed {
		r.note("sealed in storage but open in etcd: recovery will finish sealing it")
		return
	}
	blocks := rec.BlockCount
	if len(rec.Objects) > 0 {
		blocks = int64(len(rec.Objects))
	}
	if blocks != ex.Blocks || rec.LastEntry != ex.LastEntry {
		r.problem(-1, loc, "seal record says %d blocks ending at entry %d, etcd says %d blocks ending at entry %d",
			blocks, rec.LastEntry, ex.Blocks, ex.LastEntry)
	}
}

// chain checks the valid blocks up to the segment's end: numbers 0, 1, 2,
// ..., entries contiguous from 0, one epoch; and against etcd for a sealed
// segment. end is the number of block slots that make up the segment. A
// corrupt block whose header is intact still says which entries it held,
// so the next block is checked against them; after a corrupt block without
// a usable header the next block's first entry is taken as it is.
func (r *Report) chain(end int64) {
	r.LastEntry, r.FirstEntry = -1, -1
	next := int64(0) // the first entry of the next block; -1 when unknown
	var epoch int64 = -1
	slot := int64(0)
	for i := range r.Blocks {
		b := &r.Blocks[i]
		if b.No >= end || b.Fence != nil {
			continue
		}
		if b.No != slot {
			next = -1 // slots are missing before this one (reported already)
		}
		slot = b.No + 1
		h := b.Header
		usable := b.HeaderOK && h.LogID == r.Expect.LogID && h.SegmentID == r.Expect.SegmentID && h.BlockNo == b.No
		if b.Err != nil {
			if usable && (next < 0 || h.FirstEntry == next) {
				next = h.NextEntry()
				r.LastEntry = next - 1
			} else {
				next = -1
			}
			continue
		}
		switch {
		case h.LogID != r.Expect.LogID || h.SegmentID != r.Expect.SegmentID:
			r.problem(b.No, b.Loc, "block %d belongs to log %d segment %d", b.No, h.LogID, h.SegmentID)
			next = -1
			continue
		case h.BlockNo != b.No:
			r.problem(b.No, b.Loc, "block in slot %d says it is block %d", b.No, h.BlockNo)
			next = -1
			continue
		case next >= 0 && h.FirstEntry != next:
			r.problem(b.No, b.Loc, "block %d starts at entry %d, want %d", b.No, h.FirstEntry, next)
		}
		if epoch < 0 {
			epoch = h.Epoch
		} else if h.Epoch != epoch {
			r.problem(b.No, b.Loc, "block %d was written at epoch %d, the segment's blocks at epoch %d", b.No, h.Epoch, epoch)
		}
		if r.FirstEntry < 0 {
			r.FirstEntry = h.FirstEntry
		}
		next = h.NextEntry()
		r.Entries += int64(h.Count)
		r.LastEntry = next - 1
	}
	if r.FirstEntry < 0 {
		r.FirstEntry = 0
	}
	if r.Expect.Sealed && r.LastEntry != r.Expect.LastEntry && r.OK() {
		r.problem(-1, Location{}, "the blocks end at entry %d, etcd says the sealed segment ends at entry %d",
			r.LastEntry, r.Expect.LastEntry)
	}
}

// Summary is a one-line account: "3 blocks, entries 0..99 (100)", or with
// corruption "3 blocks (1 corrupt), entries 0..99 (60 readable)".
func (r *Report) Summary() string {
	var valid, corrupt int
	for _, b := range r.Blocks {
		switch {
		case b.Fence != nil:
		case b.Err != nil:
			corrupt++
		default:
			valid++
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d blocks", valid+corrupt)
	if corrupt > 0 {
		fmt.Fprintf(&sb, " (%d corrupt)", corrupt)
	}
	switch {
	case r.LastEntry < 0:
		sb.WriteString(", no entries")
	case corrupt > 0:
		fmt.Fprintf(&sb, ", entries 0..%d (%d readable)", r.LastEntry, r.Entries)
	default:
		fmt.Fprintf(&sb, ", entries %d..%d (%d)", r.FirstEntry, r.LastEntry, r.Entries)
	}
	return sb.String()
}
