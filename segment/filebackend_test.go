package segment

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/vfs"
	"github.com/woodpecker-wal/woodpecker/internal/vfs/errorfs"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// fileRig is a writer on a local-directory backend whose file system
// injects faults.
type fileRig struct {
	fs   *errorfs.FS
	be   *FileBackend
	meta *fakeMeta
	w    *Writer
}

var seg0 = Ref{LogID: 7, SegmentID: 0}

func newFileRig(t *testing.T) *fileRig {
	t.Helper()
	r := &fileRig{fs: errorfs.Wrap(vfs.Default), meta: &fakeMeta{}}
	be, err := NewFileBackendFS(context.Background(), r.fs, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r.be = be
	r.w = NewWriter(testConfig(), be, r.meta, nil)
	t.Cleanup(func() { _ = r.w.Close(context.Background()) })
	return r
}

// appendOK appends entries one at a time and requires each to succeed.
func (r *fileRig) appendOK(t *testing.T, entries ...string) {
	t.Helper()
	for _, e := range entries {
		if _, _, err := r.w.Append(context.Background(), []byte(e)); err != nil {
			t.Fatalf("append %q: %v", e, err)
		}
	}
}

// readSegment returns the entries a reader of segment 0 finds, up to the
// segment's seal when limit >= 0.
func (r *fileRig) readSegment(t *testing.T, limit int64) []string {
	t.Helper()
	c := r.be.OpenCursor(seg0)
	defer c.Close()
	if limit >= 0 {
		c.SetLimit(limit)
	}
	var out []string
	for {
		_, entries, err := c.Next(context.Background())
		if errors.Is(err, ErrNoBlockYet) || errors.Is(err, ErrEndOfSegment) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			out = append(out, string(e))
		}
	}
}

// recoverSegment seals segment 0 as a new writer of epoch 2 would, and
// returns what a reader of the sealed segment finds.
func (r *fileRig) recoverSegment(t *testing.T) []string {
	t.Helper()
	info, err := r.be.Recover(context.Background(), seg0, 2)
	if err != nil {
		t.Fatalf("recovery: %v", err)
	}
	got := r.readSegment(t, info.Blocks)
	if int64(len(got)) != info.LastEntry+1 {
		t.Fatalf("seal %+v, but the segment holds %v", info, got)
	}
	return got
}

// Faults on the segment file's second block (the first, "a", succeeds):
// the append that hit the fault fails, and so does every later one; the
// writer writes and fsyncs nothing more; the next writer's recovery reads
// the file from disk and keeps "a" and nothing after what the disk holds.
func TestFileFaultsFailTheEntriesTheyCover(t *testing.T) {
	for _, tc := range []struct {
		name string
		rule errorfs.Rule
		// errno is an errno the append's error must match; 0 for none.
		errno syscall.Errno
		// maybe says the failed entry may survive recovery: its bytes
		// reached the file (an unknown outcome).
		maybe bool
	}{
		{
			// The fsync fails once only: were it retried, the retry would
			// succeed and acknowledge "b" (PostgreSQL's "fsyncgate").
			name:  "failed fsync, not retried",
			rule:  errorfs.Rule{Op: errorfs.OpSync, Pattern: "*.seg", Nth: 2, Times: 1, Err: syscall.EIO},
			errno: syscall.EIO, maybe: true,
		},
		{
			// The kernel dropped the pages that failed writeback: the block
			// is gone from the file, and recovery must not count it.
			name:  "failed fsync that lost the data",
			rule:  errorfs.Rule{Op: errorfs.OpSync, Pattern: "*.seg", Nth: 2, Times: 1, Err: syscall.EIO, DropUnsynced: true},
			errno: syscall.EIO,
		},
		{
			name: "torn write",
			rule: errorfs.Rule{Op: errorfs.OpWrite, Pattern: "*.seg", Nth: 2, Times: 1, TornAfter: BlockHeaderSize + 3},
		},
		{
			name:  "no space left",
			rule:  errorfs.Rule{Op: errorfs.OpWrite, Pattern: "*.seg", Nth: 2, Times: -1, TornAfter: 5, Err: syscall.ENOSPC},
			errno: syscall.ENOSPC,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newFileRig(t)
			ctx := context.Background()
			inj := r.fs.Inject(tc.rule)
			r.appendOK(t, "a")
			_, _, err := r.w.Append(ctx, []byte("b"))
			if err == nil {
				t.Fatal("the append whose block failed was acknowledged")
			}
			if inj.Fired() != 1 {
				t.Fatalf("the fault fired %d times, want 1", inj.Fired())
			}
			if !errors.Is(err, walerr.ErrUnknownOutcome) {
				t.Fatalf("append error %v, want ErrUnknownOutcome: part of the block may be on disk", err)
			}
			if tc.errno != 0 && !errors.Is(err, tc.errno) {
				t.Fatalf("append error %v does not say %v", err, tc.errno)
			}
			writes, syncs := r.fs.Count(errorfs.OpWrite), r.fs.Count(errorfs.OpSync)
			if _, _, err := r.w.Append(ctx, []byte("c")); err == nil {
				t.Fatal("an append after the failure was acknowledged")
			}
			if err := r.w.Close(ctx); err == nil {
				t.Fatal("Close of the failed writer reported success")
			}
			if w, s := r.fs.Count(errorfs.OpWrite), r.fs.Count(errorfs.OpSync); w != writes || s != syncs {
				t.Fatalf("after the failure the writer wrote %d times and fsynced %d times, want neither", w-writes, s-syncs)
			}
			if _, err := os.Stat(filepath.Join(r.be.dir, r.be.name(seg0, ".seal"))); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the failed writer sealed its segment (%v)", err)
			}
			r.fs.ClearRules()
			got := fmt.Sprint(r.recoverSegment(t))
			want := "[a]"
			if tc.maybe && got == "[a b]" {
				want = got // "b" reached the file: an unknown outcome may go either way
			}
			if got != want {
				t.Fatalf("recovered segment holds %s, want %s", got, want)
			}
			if st, err := os.Stat(r.be.segPath(seg0)); err != nil || (want == "[a]" && st.Size() != r.sizeOfFirst(t)) {
				t.Fatalf("segment file after recovery: %v %v, want only block 0", st, err)
			}
		})
	}
}

// sizeOfFirst is the size of block 0 of segment 0.
func (r *fileRig) sizeOfFirst(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open(r.be.segPath(seg0))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, BlockHeaderSize)
	if _, err := f.ReadAt(head, 0); err != nil {
		t.Fatal(err)
	}
	h, err := DecodeBlockHeader(head)
	if err != nil {
		t.Fatal(err)
	}
	return BlockSize(h)
}

// A sink whose fsync failed is poisoned: a retry of the same block, or a
// seal, fails without touching the file, even though the file system
// would now succeed.
func TestFileSinkIsPoisonedByAFailedFsync(t *testing.T) {
	ctx := context.Background()
	fsys := errorfs.Wrap(vfs.Default)
	be, err := NewFileBackendFS(ctx, fsys, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sink, err := be.CreateSink(ctx, seg0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	block := mustEncodeBlock(t, BlockHeader{LogID: 7, FirstEntry: 0, Count: 1, Epoch: 1}, [][]byte{[]byte("a")}, CompressionNone)
	fsys.Inject(errorfs.Rule{Op: errorfs.OpSync, Pattern: "*.seg", Times: 1})
	first := sink.WriteBlock(ctx, 0, block)
	if !errors.Is(first, errorfs.ErrInjected) || !errors.Is(first, walerr.ErrUnknownOutcome) {
		t.Fatalf("write with a failing fsync: %v, want the fsync's error marked ErrUnknownOutcome", first)
	}
	ops := fsys.Count(errorfs.OpAny)
	if err := sink.WriteBlock(ctx, 0, block); err == nil {
		t.Fatal("a retried block was reported durable after its fsync failed")
	}
	rec, err := EncodeSealInfo(7, 0, 1, SealInfo{LastEntry: 0, Blocks: 1, Bytes: int64(len(block))})
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.WriteSeal(ctx, SealInfo{LastEntry: 0, Blocks: 1, Bytes: int64(len(block))}, rec); err == nil {
		t.Fatal("a seal counting a block whose fsync failed was written")
	}
	if n := fsys.Count(errorfs.OpAny) - ops; n != 0 {
		t.Fatalf("the poisoned sink made %d file system calls", n)
	}
}

// A segment file whose directory entry could not be made durable is never
// written to: its entries fail definitely, not with an unknown outcome.
func TestFileSegmentDirectoryFsyncFailsDefinitely(t *testing.T) {
	r := newFileRig(t)
	r.fs.Inject(errorfs.Rule{Op: errorfs.OpSync, Pattern: "7", Times: -1})
	_, _, err := r.w.Append(context.Background(), []byte("a"))
	if err == nil || errors.Is(err, walerr.ErrUnknownOutcome) {
		t.Fatalf("append: %v, want a definite failure", err)
	}
	if n := r.fs.Count(errorfs.OpWrite); n != 0 {
		t.Fatalf("%d writes to a segment whose directory entry is not durable", n)
	}
}

// A seal that cannot be written (no space for the seal file) is not a
// successful Close; the acknowledged entries stay, and recovery seals them.
func TestFileSealWithoutSpaceFailsClose(t *testing.T) {
	r := newFileRig(t)
	ctx := context.Background()
	r.appendOK(t, "a", "b")
	r.fs.Inject(errorfs.Rule{Op: errorfs.OpWrite, Pattern: ".wp-tmp-*", Times: -1, Err: syscall.ENOSPC})
	if err := r.w.Close(ctx); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Close: %v, want ENOSPC", err)
	}
	if len(r.meta.sealed) != 0 {
		t.Fatalf("metadata sealed %v without a seal record", r.meta.sealed)
	}
	r.fs.ClearRules()
	if got := fmt.Sprint(r.recoverSegment(t)); got != "[a b]" {
		t.Fatalf("recovered segment holds %s, want [a b]", got)
	}
}

// Recovery makes what it seals durable first: when it cannot fsync the
// segment file, it fails and writes no seal.
func TestFileRecoveryFailsWhenItCannotFsync(t *testing.T) {
	r := newFileRig(t)
	ctx := context.Background()
	r.appendOK(t, "a")
	r.fs.Inject(errorfs.Rule{Op: errorfs.OpSync, Pattern: "*.seg", Times: 1, Err: syscall.EIO})
	if _, err := r.be.Recover(ctx, seg0, 2); !errors.Is(err, syscall.EIO) {
		t.Fatalf("recovery: %v, want EIO", err)
	}
	if _, err := os.Stat(filepath.Join(r.be.dir, r.be.name(seg0, ".seal"))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("recovery sealed a segment it could not fsync (%v)", err)
	}
	if got := fmt.Sprint(r.recoverSegment(t)); got != "[a]" {
		t.Fatalf("second recovery: %s, want [a]", got)
	}
}
