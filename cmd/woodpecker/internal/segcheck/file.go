package segcheck

import (
	"bytes"
	"fmt"
	"io"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/segment"
)

// File is a local segment's files: the segment file of concatenated
// blocks, and the seal and fence files beside it.
type File struct {
	// Seg reads the first Size bytes of the segment file; nil when the
	// file does not exist (a writer that died before its first block).
	Seg  io.ReaderAt
	Size int64
	Path string
	// Seal and Fence are the contents of the seal and fence files, nil
	// when absent.
	Seal      []byte
	SealPath  string
	Fence     []byte
	FencePath string
}

// blockMagic starts every block.
var blockMagic = []byte("WPBK")

// searchChunk bounds the reads of the search for the next block.
const searchChunk = 1 << 20

// CheckFile checks a local segment (see segment.FileBackend for the
// layout). Blocks follow each other in the file; a region that is not a
// valid block is corruption when valid blocks of the segment follow it (or
// when the segment is sealed and needs it), and a torn tail otherwise: the
// write a crash cut short, which recovery cuts off. Read errors are
// returned; findings are in the report.
func CheckFile(f File, ex Expect, o Options) (*Report, error) {
	r := &Report{Expect: ex}
	if f.Seal != nil {
		r.checkSeal(f.Seal, Location{File: f.SealPath, Offset: -1})
	} else if ex.Sealed {
		r.problem(-1, Location{File: f.SealPath, Offset: -1}, "seal record %s is missing but etcd says the segment is sealed", f.SealPath)
	}
	if f.Fence != nil {
		if fi, err := segment.DecodeFence(f.Fence); err != nil {
			r.problem(-1, Location{File: f.FencePath, Offset: -1}, "fence file: %s", describeErr(err))
		} else {
			r.note("fenced by recovery at epoch %d: the writer that created the segment can append no more", fi.Epoch)
		}
	}
	limit := int64(-1)
	if ex.Sealed {
		limit = ex.Blocks
	}
	if f.Seg == nil {
		if ex.Sealed && ex.Blocks > 0 {
			r.problem(-1, Location{File: f.Path, Offset: -1}, "segment file %s is missing but the seal says it holds %d blocks", f.Path, ex.Blocks)
		}
		r.chain(0)
		return r, nil
	}
	c := walker{rd: f.Seg, size: f.Size, name: f.Path, r: r, o: o, limit: limit, what: "the file", by: "the seal",
		loc: func(off int64) Location { return Location{File: f.Path, Offset: off} }}
	if err := c.walk(); err != nil {
		return nil, err
	}
	end := c.no
	if limit >= 0 {
		end = limit
	}
	r.chain(end)
	return r, nil
}

// walker walks concatenated blocks: a local segment file, or an object of
// a compacted layout.
type walker struct {
	rd   io.ReaderAt
	size int64
	name string // for read errors
	r    *Report
	o    Options
	// no is the number of the block expected next: set it to the first
	// block's before walk. limit is one past the last block the data must
	// hold, or -1 when it may end anywhere (an open segment).
	no    int64
	limit int64
	// what names the data ("the file", "object K") and by what says how
	// many blocks it must hold ("the seal", "the layout"), for messages.
	what, by string
	loc      func(off int64) Location
	// inObject makes offsets in messages relative to an object.
	inObject bool
}

func (c *walker) read(off, n int64) ([]byte, error) {
	b := make([]byte, n)
	if _, err := c.rd.ReadAt(b, off); err != nil && !(errors.Is(err, io.EOF) && off+n <= c.size) {
		return nil, errors.Wrapf(err, "read %s at offset %d", c.name, off)
	}
	return b, nil
}

// describe says what is wrong with the block at off.
func (c *walker) describe(err error, off int64) string {
	if c.inObject {
		return describeAt(err, off, "object offset")
	}
	return describeAt(err, off, "file offset")
}

func (c *walker) walk() error {
	size := c.size
	off := int64(0)
	for off < size {
		if c.limit >= 0 && c.no >= c.limit {
			c.r.note("%d bytes of %s after block %d (from offset %d) are not part of the segment; readers ignore them",
				size-off, c.what, c.limit-1, off)
			return nil
		}
		if size-off < segment.BlockHeaderSize {
			c.torn(off, fmt.Sprintf("%d bytes, less than a block header", size-off))
			return nil
		}
		hb, err := c.read(off, segment.BlockHeaderSize)
		if err != nil {
			return err
		}
		h, herr := segment.DecodeBlockHeader(hb)
		if herr != nil {
			next, nh, found, err := c.findBlock(off + 1)
			if err != nil {
				return err
			}
			if !found {
				c.torn(off, c.describe(herr, off))
				return nil
			}
			c.r.Blocks = append(c.r.Blocks, Block{No: c.no, Loc: c.loc(off), Size: next - off, Err: herr})
			c.r.problem(c.no, c.loc(off), "bytes %d..%d, where block %d should be, are not a valid block (%s); valid block %d follows at offset %d",
				off, next-1, c.no, c.describe(herr, off), nh.BlockNo, next)
			off, c.no = next, nh.BlockNo
			continue
		}
		bsize := segment.BlockSize(h)
		if off+bsize > size {
			c.torn(off, fmt.Sprintf("block %d is cut short: its header says %d bytes, %s holds %d from there", h.BlockNo, bsize, c.what, size-off))
			return nil
		}
		data, err := c.read(off, bsize)
		if err != nil {
			return err
		}
		b := Block{No: c.no, Loc: c.loc(off), Size: bsize, Header: h, HeaderOK: true}
		_, entries, derr := segment.DecodeBlock(data)
		if derr != nil {
			if c.limit < 0 && off+bsize == size {
				// The last write of an open segment: torn, not damaged.
				c.torn(off, c.describe(derr, off))
				return nil
			}
			b.Err = derr
			c.r.Blocks = append(c.r.Blocks, b)
			c.r.problem(c.no, c.loc(off), "block %d: %s", c.no, c.describe(derr, off))
		} else {
			for _, e := range entries {
				b.EntrySize += int64(len(e))
			}
			if c.o.KeepEntries {
				b.Entries = entries
			}
			c.r.Blocks = append(c.r.Blocks, b)
		}
		off += bsize
		c.no++
	}
	if c.limit >= 0 && c.no < c.limit {
		c.r.problem(c.no, c.loc(off), "%s ends where block %d should start, but %s says it holds blocks up to %d",
			c.what, c.no, c.by, c.limit-1)
	}
	return nil
}

// torn reports the region from off to the end, which holds no valid block:
// a torn tail of an open segment, or missing data of a sealed one.
func (c *walker) torn(off int64, cause string) {
	n := c.size - off
	if c.limit >= 0 {
		c.r.problem(c.no, c.loc(off), "block %d, which %s says %s holds, is not valid: %s", c.no, c.by, c.what, cause)
		return
	}
	c.r.note("torn tail: the last %d bytes (from offset %d, where block %d would be) are not a complete block: %s; "+
		"a write in progress, or cut short by a crash (recovery cuts it off)", n, off, c.no, cause)
}

// findBlock searches from pos for the header of a block of this segment
// numbered no or later.
func (c *walker) findBlock(pos int64) (off int64, h segment.BlockHeader, found bool, err error) {
	size := c.size
	for pos+segment.BlockHeaderSize <= size {
		n := min(int64(searchChunk), size-pos)
		buf, err := c.read(pos, n)
		if err != nil {
			return 0, h, false, err
		}
		for j := 0; ; {
			i := bytes.Index(buf[j:], blockMagic)
			if i < 0 {
				break
			}
			cand := pos + int64(j+i)
			if cand+segment.BlockHeaderSize > size {
				return 0, h, false, nil
			}
			hb, err := c.read(cand, segment.BlockHeaderSize)
			if err != nil {
				return 0, h, false, err
			}
			if h, herr := segment.DecodeBlockHeader(hb); herr == nil && h.LogID == c.r.Expect.LogID &&
				h.SegmentID == c.r.Expect.SegmentID && h.BlockNo >= c.no {
				return cand, h, true, nil
			}
			j += i + 1
		}
		if pos+n >= size {
			break
		}
		pos += n - int64(len(blockMagic)-1) // a magic may straddle two chunks
	}
	return 0, h, false, nil
}
