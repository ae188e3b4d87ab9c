package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// damages are the ways obj-corrupt damages a block object. other is a valid
// block of another position of the same segment.
var damages = []struct {
	name string
	fn   func(data, other []byte) []byte
}{
	{"payload byte flipped", func(d, _ []byte) []byte {
		d[segment.BlockHeaderSize+(len(d)-segment.BlockHeaderSize)/2] ^= 0x20
		return d
	}},
	{"header byte flipped", func(d, _ []byte) []byte { d[20] ^= 0x01; return d }},
	{"last byte flipped", func(d, _ []byte) []byte { d[len(d)-1] ^= 0xff; return d }},
	{"cut short", func(d, _ []byte) []byte { return d[:len(d)-7] }},
	{"zeroed", func(d, _ []byte) []byte { return make([]byte, len(d)) }},
	{"empty", func([]byte, []byte) []byte { return []byte{} }},
	{"another block of the segment", func(_, o []byte) []byte { return o }},
}

// victimEntries is how many entries a damage check writes, one block each.
const victimEntries = 12

// damage is the object-store fault: it writes a log of its own (so the
// damage, deliberate, stays out of the history the checker judges), damages
// one block object of its sealed segment behind the engine's back (corrupts
// or deletes it), and checks that a reader delivers every entry before the
// block, then fails with ErrCorrupt, twice, and never delivers anything
// from the block or after it: detection is required, silent loss is the bug.
func (r *runner) damage(n int, f fault) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli := r.c.client
	name := fmt.Sprintf("victim%d", n)
	if err := cli.CreateLog(ctx, name); err != nil {
		return err
	}
	l, err := cli.OpenLog(ctx, name)
	if err != nil {
		return err
	}
	w, err := l.OpenWriter(ctx, 1)
	if err != nil {
		return err
	}
	ids := make([]woodpecker.EntryID, victimEntries)
	for i := range ids {
		// One at a time: nothing is in flight, so each entry gets a block.
		if ids[i], err = w.Append(ctx, makePayload(fmt.Sprintf("%s-%d", name, i))); err != nil {
			_ = w.Close(ctx)
			return errors.Wrapf(err, "append %d", i)
		}
	}
	if err := w.Close(ctx); err != nil {
		return errors.Wrap(err, "close (seal)")
	}
	st, err := l.Stats(ctx)
	if err != nil {
		return err
	}
	var seg woodpecker.SegmentInfo
	for _, sg := range st.Segments {
		if sg.Sealed && sg.Blocks >= 2 {
			seg = sg
		}
	}
	if seg.Blocks < 2 {
		return errors.Newf("no sealed segment of 2 blocks or more: %+v", st.Segments)
	}
	b, ok := cli.Backend().(interface {
		Store() objstore.Store
		Root() string
	})
	if !ok {
		return errors.Newf("backend %T has no object store", cli.Backend())
	}
	store, root := b.Store(), b.Root()
	blk := int64(r.rng.IntN(int(seg.Blocks)))
	key := segment.BlockKey(root, l.ID(), seg.ID, blk)
	data, err := store.Get(ctx, key)
	if err != nil {
		return errors.Wrapf(err, "get %s", key)
	}
	h, _, err := segment.DecodeBlock(data)
	if err != nil {
		return errors.Wrapf(err, "block %s before the damage", key)
	}
	damaged := woodpecker.EntryID{Segment: seg.ID, Entry: h.FirstEntry}
	if f.Kind == objDelete {
		err = store.Delete(ctx, key)
	} else {
		otherKey := segment.BlockKey(root, l.ID(), seg.ID, (blk+1)%seg.Blocks)
		other, gerr := store.Get(ctx, otherKey)
		if gerr != nil {
			return errors.Wrapf(gerr, "get %s", otherKey)
		}
		err = store.Put(ctx, key, damages[f.Damage].fn(data, other), objstore.PutOptions{})
	}
	if err != nil {
		return errors.Wrapf(err, "damage %s", key)
	}

	// Read from the start of the log: the entries before the damaged
	// block, then ErrCorrupt.
	rd, err := l.OpenReader(ctx, woodpecker.Earliest())
	if err != nil {
		return err
	}
	defer rd.Close()
	next := 0
	for attempt := 0; attempt < 2; {
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		e, err := rd.Next(rctx)
		rcancel()
		switch {
		case err == nil:
			if !e.ID.Less(damaged) {
				return errors.Newf("silent damage: the reader delivered %s, at or after the first entry %s of damaged block %s, instead of failing",
					e.ID, damaged, key)
			}
			if next >= len(ids) || e.ID != ids[next] {
				return errors.Newf("the reader delivered %s, want %s", e.ID, ids[min(next, len(ids)-1)])
			}
			if _, perr := parsePayload(e.Payload); perr != nil {
				return errors.Wrapf(perr, "entry %s", e.ID)
			}
			next++
		case errors.Is(err, woodpecker.ErrCorrupt):
			if next >= len(ids) || ids[next] != damaged {
				return errors.Newf("ErrCorrupt after %d entries, want it at %s: %v", next, damaged, err)
			}
			attempt++
		case errors.Is(err, context.DeadlineExceeded):
			return errors.Newf("the reader neither delivered nor failed within 30s after %d entries: damaged block %s (%s) is not detected",
				next, key, f.String(r.mode))
		default:
			return errors.Wrapf(err, "read after %d entries: want ErrCorrupt", next)
		}
	}
	return nil
}
