package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// oneEntryPerBlock: a lone writer appending synchronously cuts one block
// per entry (nothing is in flight when the next entry comes); 4 blocks per
// segment.
func oneEntryPerBlock(cfg *options.Config) { cfg.Writer.RollMaxBlocks = 4 }

// appendSync appends tag:0 .. tag:n-1 one at a time and returns their ids.
func appendSync(t *testing.T, w *woodpecker.Writer, tag string, n int) []woodpecker.EntryID {
	t.Helper()
	ids := make([]woodpecker.EntryID, n)
	for i := range n {
		id, err := w.Append(context.Background(), makePayload(tag, int64(i)))
		if err != nil {
			t.Fatalf("append %s:%d: %v", tag, i, err)
		}
		ids[i] = id
	}
	return ids
}

// expectCorrupt reads the entries before the damaged block, checking them,
// then expects ErrCorrupt naming the log, the segment and the block, twice:
// a reader must not skip damaged data.
func expectCorrupt(t *testing.T, l *woodpecker.Log, from woodpecker.StartPosition, tag string, before []woodpecker.EntryID, seg, blk int64) {
	t.Helper()
	r := openReader(t, l, from)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := readN(ctx, r, len(before))
	if err != nil {
		t.Fatalf("entries before the damaged block: %v", err)
	}
	for i, e := range got {
		if e.ID != before[i] || e.Tag != tag {
			t.Fatalf("entry %d: %v, want %v of %s", i, e, before[i], tag)
		}
	}
	for attempt := range 2 {
		e, err := r.Next(ctx)
		switch {
		case err == nil:
			t.Fatalf("read %d after the damage: got entry %v (%d bytes), want ErrCorrupt", attempt, e.ID, len(e.Payload))
		case !errors.Is(err, woodpecker.ErrCorrupt):
			t.Fatalf("read %d after the damage: %v, want ErrCorrupt", attempt, err)
		}
		msg := err.Error()
		for _, want := range []string{
			strconv.Quote(l.Name()),
			"segment " + strconv.FormatInt(seg, 10),
		} {
			if !strings.Contains(msg, want) {
				t.Fatalf("ErrCorrupt does not name %s: %v", want, err)
			}
		}
		if !strings.Contains(msg, segment.BlockName(blk)) && !strings.Contains(msg, fmt.Sprintf("block %d", blk)) {
			t.Fatalf("ErrCorrupt does not name block %d: %v", blk, err)
		}
		if attempt == 0 {
			t.Logf("reader error: %v", err)
		}
	}
}

// TestCorruptBlockObject damages one block object in MinIO, behind the
// engine's back (an unconditional put), in a sealed segment and in the open
// segment a writer is still appending to. A reader must return every entry
// before the block, then ErrCorrupt naming the log, the segment and the
// block, again on the next call; it must neither skip the block nor panic.
// A reader opened at the damaged entry fails the same way.
func TestCorruptBlockObject(t *testing.T) {
	s := newSite(t, kindMinIO)
	c := s.client(t, oneEntryPerBlock)
	store := s.store(t)
	damages := []struct {
		name   string
		damage func(t *testing.T, data []byte, l *woodpecker.Log, seg, blk int64) []byte
	}{
		{"payload byte flipped", func(t *testing.T, d []byte, _ *woodpecker.Log, _, _ int64) []byte {
			d[segment.BlockHeaderSize+(len(d)-segment.BlockHeaderSize)/2] ^= 0x20
			return d
		}},
		{"header byte flipped", func(t *testing.T, d []byte, _ *woodpecker.Log, _, _ int64) []byte {
			d[20] ^= 0x01
			return d
		}},
		{"last byte flipped", func(t *testing.T, d []byte, _ *woodpecker.Log, _, _ int64) []byte {
			d[len(d)-1] ^= 0xff
			return d
		}},
		{"cut short", func(t *testing.T, d []byte, _ *woodpecker.Log, _, _ int64) []byte { return d[:len(d)-7] }},
		{"header only", func(t *testing.T, d []byte, _ *woodpecker.Log, _, _ int64) []byte {
			return d[:segment.BlockHeaderSize]
		}},
		{"empty", func(t *testing.T, d []byte, _ *woodpecker.Log, _, _ int64) []byte { return []byte{} }},
		{"zeroed", func(t *testing.T, d []byte, _ *woodpecker.Log, _, _ int64) []byte { return make([]byte, len(d)) }},
		{"valid block of another segment", func(t *testing.T, d []byte, l *woodpecker.Log, seg, blk int64) []byte {
			other, err := store.Get(context.Background(), segment.BlockKey("", l.ID(), 0, 0))
			if err != nil {
				t.Fatal(err)
			}
			return other
		}},
		// Below a seal's block count every slot holds a block: a fence
		// there is damage, not the end of the segment. (In an open segment
		// it is what recovery writes, so only the sealed case applies.)
		{"a fence object", func(t *testing.T, d []byte, l *woodpecker.Log, seg, blk int64) []byte {
			return segment.EncodeFence(segment.FenceInfo{LogID: l.ID(), SegmentID: seg, BlockNo: blk, Epoch: 9})
		}},
	}
	for _, sealed := range []bool{true, false} {
		for i, dmg := range damages {
			state := map[bool]string{true: "sealed", false: "open"}[sealed]
			if !sealed && dmg.name == "a fence object" {
				continue
			}
			t.Run(state+"/"+dmg.name, func(t *testing.T) {
				name := fmt.Sprintf("corrupt-%s-%d", state, i)
				l := createLog(t, c, name)
				w, err := l.OpenWriter(context.Background(), 1)
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close(context.Background())
				// Sealed: segments 0-2 full and sealed, block 2 of segment 1
				// damaged. Open: segment 2 holds blocks 0 and 1 and is
				// still being written; block 1 damaged.
				n, seg, blk := 12, int64(1), int64(2)
				if !sealed {
					n, seg, blk = 10, 2, 1
				}
				ids := appendSync(t, w, "e", n)
				if sealed {
					if err := w.Close(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
				key := segment.BlockKey("", l.ID(), seg, blk)
				data, err := store.Get(context.Background(), key)
				if err != nil {
					t.Fatalf("get %s: %v", key, err)
				}
				bad := dmg.damage(t, data, l, seg, blk)
				if err := store.Put(context.Background(), key, bad, objstore.PutOptions{}); err != nil {
					t.Fatalf("overwrite %s: %v", key, err)
				}
				k := int(seg*4 + blk) // entries before the damaged block
				expectCorrupt(t, l, woodpecker.Earliest(), "e", ids[:k], seg, blk)
				expectCorrupt(t, l, woodpecker.At(ids[k]), "e", nil, seg, blk)
			})
		}
	}
}

// segFile is the file of a segment on local storage.
func segFile(dir string, logID, seg int64) string {
	return filepath.Join(dir, strconv.FormatInt(logID, 10), fmt.Sprintf("%019d.seg", seg))
}

// blockOffsets walks a segment file's block headers and returns each
// block's offset and the end of the last one.
func blockOffsets(t *testing.T, path string) (offs []int64, end int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for end+segment.BlockHeaderSize <= int64(len(data)) {
		h, err := segment.DecodeBlockHeader(data[end : end+segment.BlockHeaderSize])
		if err != nil {
			t.Fatalf("%s at %d: %v", path, end, err)
		}
		offs = append(offs, end)
		end += segment.BlockSize(h)
	}
	if end != int64(len(data)) {
		t.Fatalf("%s: blocks end at %d, file at %d", path, end, len(data))
	}
	return offs, end
}

// TestCorruptSegmentFile flips a byte in a middle block of a sealed segment
// file: the reader returns the entries before it, then ErrCorrupt naming the
// log, segment and block.
func TestCorruptSegmentFile(t *testing.T) {
	s := newSite(t, kindLocal)
	c := s.client(t, oneEntryPerBlock)
	l := createLog(t, c, "corrupt-file")
	w, err := l.OpenWriter(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	ids := appendSync(t, w, "e", 12)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	path := segFile(s.Dir, l.ID(), 1)
	offs, _ := blockOffsets(t, path)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	at := offs[2] + segment.BlockHeaderSize + 10
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	expectCorrupt(t, l, woodpecker.Earliest(), "e", ids[:6], 1, 2)
}

// TestTornSegmentFile damages the tail of a segment file that a writer left
// open (it stopped without closing, as if its process died in the middle
// of a write), then opens a writer at the next epoch, as a restarted
// process would, on a new client. Recovery must cut the torn block off and
// seal the segment with the entries before it; the new writer appends; a
// reader sees exactly the intact entries, then the new writer's.
func TestTornSegmentFile(t *testing.T) {
	const n = 10 // entries, one per block, all in segment 0
	tweak := func(cfg *options.Config) { cfg.Writer.RollMaxBlocks = 1000 }
	for _, tc := range []struct {
		name string
		// tear damages the file given its block offsets and end; keep is
		// how many entries must survive.
		tear func(t *testing.T, path string, offs []int64, end int64)
		keep int
	}{
		{"cut inside the last block's payload", func(t *testing.T, p string, offs []int64, end int64) {
			truncate(t, p, offs[n-1]+segment.BlockHeaderSize+(end-offs[n-1]-segment.BlockHeaderSize)/2)
		}, n - 1},
		{"cut inside the last block's header", func(t *testing.T, p string, offs []int64, end int64) {
			truncate(t, p, offs[n-1]+segment.BlockHeaderSize/2)
		}, n - 1},
		{"one byte short", func(t *testing.T, p string, offs []int64, end int64) { truncate(t, p, end-1) }, n - 1},
		{"last block scrambled, same length", func(t *testing.T, p string, offs []int64, end int64) {
			flip(t, p, end-5)
		}, n - 1},
		{"garbage after the last block", func(t *testing.T, p string, offs []int64, end int64) {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write(makePayloadSize("junk", 1, 100)); err != nil {
				t.Fatal(err)
			}
		}, n},
		{"start of a next block", func(t *testing.T, p string, offs []int64, end int64) {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// The first 40 bytes of a copy of the last block.
			if _, err := f.Write(data[offs[n-1] : offs[n-1]+40]); err != nil {
				t.Fatal(err)
			}
		}, n},
		{"cut to nothing", func(t *testing.T, p string, offs []int64, end int64) { truncate(t, p, 0) }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t, kindLocal)
			ctx := context.Background()
			l := createLog(t, s.client(t, tweak), "torn")
			a, err := l.OpenWriter(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close(ctx) // abandoned: fenced by the time it closes
			ids := appendSync(t, a, "A", n)
			path := segFile(s.Dir, l.ID(), 0)
			offs, end := blockOffsets(t, path)
			if len(offs) != n {
				t.Fatalf("segment file holds %d blocks, want %d (one per entry)", len(offs), n)
			}
			tc.tear(t, path, offs, end)

			l2 := openLog(t, s.client(t, tweak), "torn")
			b, err := l2.OpenWriter(ctx, 2)
			if err != nil {
				t.Fatalf("open a writer after the tear: %v", err)
			}
			st, err := l2.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if sg := st.Segments[0]; !sg.Sealed || sg.LastEntry != int64(tc.keep-1) {
				t.Fatalf("segment 0 after recovery: %+v, want sealed with last entry %d", sg, tc.keep-1)
			}
			wantSize := end
			if tc.keep < n {
				wantSize = offs[tc.keep]
			}
			if fi, err := os.Stat(path); err != nil || fi.Size() != wantSize {
				t.Fatalf("segment file after recovery: %v, %v; want %d bytes (torn tail cut)", fi.Size(), err, wantSize)
			}
			idsB := appendSync(t, b, "B", 3)
			if err := b.Close(ctx); err != nil {
				t.Fatal(err)
			}
			var want []seen
			for i := range tc.keep {
				want = append(want, seen{ID: ids[i], Tag: "A", Seq: int64(i)})
			}
			for i, id := range idsB {
				want = append(want, seen{ID: id, Tag: "B", Seq: int64(i)})
			}
			sameEntries(t, "log after recovery", readWhole(t, l2), want)
		})
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}
