package segcheck

import (
	"bytes"
	"context"
	"strings"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// CheckObjects checks a segment kept as objects under prefix in store (see
// segment.ObjectBackend: b-<block number> objects, then a seal object; or,
// after compaction, the objects the index of the current layout's seal
// record names). Every object is read whole. The segment ends at the
// sealed block count, or, while it is open, at its first missing slot or
// fence: blocks above that are never read (a fenced writer's leftovers, or
// uploads still in flight). Errors listing or reading the store are
// returned; findings are in the report.
func CheckObjects(ctx context.Context, store objstore.Store, prefix string, ex Expect, o Options) (*Report, error) {
	r := &Report{Expect: ex}
	objs, err := objstore.ListAll(ctx, store, prefix, "")
	if err != nil {
		return nil, err
	}
	if ex.Sealed && ex.Generation > 0 {
		if err := checkLayout(ctx, store, prefix, objs, r, o); err != nil {
			return nil, err
		}
		return r, nil
	}
	var sealKey string
	unfinished := 0
	fenceSlot := int64(-1)
	present := map[int64]bool{}
	for _, obj := range objs {
		name := strings.TrimPrefix(obj.Key, prefix)
		if name == segment.SealName {
			sealKey = obj.Key
			continue
		}
		n := segment.ParseObjectName(name)
		switch {
		case n.Kind == segment.ObjectMerged || n.Kind == segment.ObjectSeal:
			unfinished++ // a compaction not committed (yet)
			continue
		case n.Kind != segment.ObjectBlock:
			r.note("unexpected object %s in the segment's prefix", obj.Key)
			continue
		}
		no := n.Block
		data, err := store.Get(ctx, obj.Key)
		if err != nil {
			return nil, err
		}
		present[no] = true
		b := Block{No: no, Loc: Location{Key: obj.Key}, Size: int64(len(data))}
		if segment.IsFence(data) {
			fi, ferr := segment.DecodeFence(data)
			if ferr != nil {
				b.Err = ferr
			} else {
				b.Fence = &fi
				if fenceSlot < 0 {
					fenceSlot = no
				}
			}
			r.Blocks = append(r.Blocks, b)
			continue
		}
		h, entries, derr := segment.DecodeBlock(data)
		if derr != nil {
			b.Err = derr
			if hh, herr := segment.DecodeBlockHeader(data); herr == nil {
				b.Header, b.HeaderOK = hh, true
			}
		} else {
			b.Header, b.HeaderOK = h, true
			for _, e := range entries {
				b.EntrySize += int64(len(e))
			}
			if o.KeepEntries {
				b.Entries = entries
			}
		}
		r.Blocks = append(r.Blocks, b)
	}
	if sealKey != "" {
		data, err := store.Get(ctx, sealKey)
		if err != nil {
			return nil, err
		}
		r.checkSeal(data, Location{Key: sealKey})
	} else if ex.Sealed {
		r.problem(-1, Location{Key: prefix + segment.SealName}, "seal record %s%s is missing but etcd says the segment is sealed", prefix, segment.SealName)
	}

	// Where the segment ends.
	end := int64(0)
	if ex.Sealed {
		end = ex.Blocks
	} else {
		for present[end] && end != fenceSlot {
			end++
		}
		if fenceSlot < 0 || end < fenceSlot {
			above := 0
			for no := range present {
				if no > end {
					above++
				}
			}
			if above > 0 {
				r.note("block %d is not written yet (an upload in flight, or lost with a crashed writer): "+
					"the %d blocks above it are not readable until it is", end, above)
			}
		}
	}
	for no := int64(0); no < end; no++ {
		if !present[no] {
			r.problem(no, Location{Key: prefix + segment.BlockName(no)}, "block %d is missing (the segment has %d blocks)", no, end)
		}
	}
	garbage := 0
	for _, b := range r.Blocks {
		switch {
		case b.Fence != nil:
			if b.No < end {
				r.problem(b.No, b.Loc, "a fence (epoch %d) occupies slot %d, inside the segment's %d blocks", b.Fence.Epoch, b.No, end)
			} else if b.No == fenceSlot {
				r.note("fence in slot %d placed by recovery at epoch %d: the segment ends before it", b.No, b.Fence.Epoch)
			}
		case b.Err != nil && b.No < end:
			r.problem(b.No, b.Loc, "block %d: %s", b.No, describeErr(b.Err))
		case b.No >= end:
			garbage++
		}
	}
	if garbage > 0 && (ex.Sealed || fenceSlot >= 0) {
		r.note("%d objects above the segment's end (slot %d) are leftovers of a fenced writer; readers never see them", garbage, end)
	}
	if unfinished > 0 {
		r.note("%d objects of a compaction not committed in etcd (in progress, or orphans garbage collection deletes)", unfinished)
	}
	r.chain(end)
	return r, nil
}

// checkLayout checks a compacted segment: the seal record of its current
// layout generation, and every object its index names, each a run of
// concatenated blocks.
func checkLayout(ctx context.Context, store objstore.Store, prefix string, objs []objstore.ObjectInfo, r *Report, o Options) error {
	ex := r.Expect
	sealKey := prefix + segment.LayoutSealName(ex.Generation)
	present := map[string]bool{}
	for _, obj := range objs {
		present[obj.Key] = true
	}
	defer func() {
		var older, unknown int
		for _, obj := range objs {
			if obj.Key == sealKey || r.inLayout[obj.Key] {
				continue
			}
			if n := segment.ParseObjectName(strings.TrimPrefix(obj.Key, prefix)); n.Kind == segment.ObjectUnknown {
				unknown++
			} else {
				older++
			}
		}
		if older > 0 {
			r.note("%d objects are not part of layout %d: replaced by compaction (kept for readers for a grace period) "+
				"or left by an unfinished one; garbage collection deletes them", older, ex.Generation)
		}
		if unknown > 0 {
			r.note("%d objects with names Woodpecker does not write are in the segment's prefix", unknown)
		}
		r.chain(ex.Blocks)
	}()
	if !present[sealKey] {
		r.problem(-1, Location{Key: sealKey}, "seal record %s of layout generation %d (etcd) is missing", sealKey, ex.Generation)
		return nil
	}
	data, err := store.Get(ctx, sealKey)
	if err != nil {
		return err
	}
	loc := Location{Key: sealKey}
	r.SealLoc = loc
	rec, err := segment.DecodeSeal(data)
	if err != nil {
		r.problem(-1, loc, "seal record: %s", describeErr(err))
		return nil
	}
	r.Seal = &rec
	switch {
	case rec.LogID != ex.LogID || rec.SegmentID != ex.SegmentID:
		r.problem(-1, loc, "seal record belongs to log %d segment %d", rec.LogID, rec.SegmentID)
		return nil
	case rec.LastEntry != ex.LastEntry:
		r.problem(-1, loc, "seal record says the segment ends at entry %d, etcd says %d", rec.LastEntry, ex.LastEntry)
	case len(rec.Objects) == 0 && ex.Blocks > 0:
		r.problem(-1, loc, "seal record of layout %d indexes no object for %d blocks", ex.Generation, ex.Blocks)
		return nil
	}
	r.inLayout = map[string]bool{}
	for i, io := range rec.Objects {
		n := segment.ParseObjectName(io.Name)
		if (n.Kind != segment.ObjectBlock && n.Kind != segment.ObjectMerged) || n.Generation > ex.Generation {
			r.problem(-1, loc, "the index names object %q, which layout %d cannot hold", io.Name, ex.Generation)
			continue
		}
		end := ex.Blocks
		if i+1 < len(rec.Objects) {
			end = segment.ParseObjectName(rec.Objects[i+1].Name).Block
		}
		key := prefix + io.Name
		r.inLayout[key] = true
		if !present[key] {
			r.problem(n.Block, Location{Key: key}, "object %s (blocks %d..%d) of layout %d is missing", key, n.Block, end-1, ex.Generation)
			continue
		}
		data, err := store.Get(ctx, key)
		if err != nil {
			return err
		}
		if int64(len(data)) != io.Size {
			r.problem(n.Block, Location{Key: key}, "object %s holds %d bytes, the index says %d", key, len(data), io.Size)
		}
		before := len(r.Blocks)
		w := walker{rd: bytes.NewReader(data), size: int64(len(data)), name: key, r: r, o: o, no: n.Block, limit: end,
			what: "object " + key, by: "the layout", inObject: true,
			loc: func(off int64) Location { return Location{Key: key, Offset: off} }}
		if err := w.walk(); err != nil {
			return err
		}
		first, count, valid := int64(-1), int64(0), true
		for _, b := range r.Blocks[before:] {
			if b.Err != nil {
				valid = false
				break
			}
			if first < 0 {
				first = b.Header.FirstEntry
			}
			count += int64(b.Header.Count)
		}
		// Compared only when every block was found whole: otherwise the
		// missing or corrupt block is the problem reported.
		if valid && int64(len(r.Blocks)-before) == end-n.Block && (first != io.FirstEntry || count != int64(io.Count)) {
			r.problem(n.Block, Location{Key: key}, "the index says object %s holds entries %d..%d, its blocks hold %d..%d",
				key, io.FirstEntry, io.FirstEntry+int64(io.Count)-1, first, first+count-1)
		}
	}
	return nil
}
