package logstore

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"google.golang.org/grpc/codes"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/vfs"
	"github.com/woodpecker-wal/woodpecker/internal/vfs/errorfs"
	"github.com/woodpecker-wal/woodpecker/quorum/logstore/journal"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
)

// journaled starts a replica keeping its journal in dir (on fsys, the
// operating system's when nil), as a restarted process would: the journal
// is opened and replayed afresh. The replica registered at revision 10.
func journaled(t *testing.T, dir string, fsys vfs.FS, store objstore.Store) *replica {
	t.Helper()
	d, err := journal.Open(fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := d.Revision("ls-"+t.Name(), 10)
	if err != nil {
		t.Fatal(err)
	}
	return startReplica(t, Config{Journal: d, RegisteredRevision: rev, Store: store})
}

// crash stops r the way a crash would as far as the journal is concerned:
// whatever it did not sync is not relied on, and its memory is gone.
func crash(t *testing.T, r *replica) {
	t.Helper()
	_ = r.conn.Close()
	if err := r.srv.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestJournaledReplicaHoldsAfterARestartEveryBlockItAcknowledged(t *testing.T) {
	dir := t.TempDir()
	store := stalledStore{memstore.New()} // nothing reaches object storage
	r := journaled(t, dir, nil, store)
	for n := range int64(3) {
		req := addReq(t, n)
		req.Uploader = true
		mustAdd(t, r, req)
	}
	crash(t, r)

	// A segment created after the first registration (10), not before the
	// restart: the restarted replica vouches for it with what it holds.
	r = journaled(t, dir, nil, store)
	st := status1(t, r, 20)
	if !st.GetKnown() {
		t.Fatal("the restarted replica does not vouch for a segment its journal holds")
	}
	wantHeld(t, r, 0, 1, 2)
	for n := range int64(3) {
		resp, err := r.ReadBlock(ctxT(t), &quorumpb.ReadBlockRequest{Segment: testSegment(), BlockNo: n})
		if err != nil || !bytes.Equal(resp.GetBlock(), block(t, n)) {
			t.Fatalf("block %d after the restart: %v (bytes equal %t)", n, err, bytes.Equal(resp.GetBlock(), block(t, n)))
		}
	}
	// The writer goes on where it was; a retry of an acknowledged block
	// is still recognized.
	mustAdd(t, r, addReq(t, 2))
	mustAdd(t, r, addReq(t, 3))
	other := addReq(t, 1)
	other.Block = blockOf(t, testLog, testSeg, testEpoch, 1, "other bytes")
	_, err := r.AddBlock(ctxT(t), other)
	wantRefusal(t, err, codes.InvalidArgument, ReasonInvalid)
	wantHeld(t, r, 0, 1, 2, 3)
	if got := r.srv.Stats(); got.Blocks != 4 || got.Bytes == 0 {
		t.Fatalf("stats after the restart %+v, want 4 blocks", got)
	}
}

func TestJournaledFenceAndReleaseSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	r := journaled(t, dir, nil, memstore.New())
	fenced := &quorumpb.Segment{LogId: testLog, SegmentId: testSeg, Epoch: testEpoch + 1}
	released := &quorumpb.Segment{LogId: testLog, SegmentId: testSeg + 1, Epoch: testEpoch}
	mustAdd(t, r, addReq(t, 0))
	if _, err := r.Fence(ctxT(t), &quorumpb.FenceRequest{Segment: fenced}); err != nil {
		t.Fatal(err)
	}
	// Released without ever holding a block: the tombstone is all there is.
	if _, err := r.Release(ctxT(t), &quorumpb.ReleaseRequest{Segment: released}); err != nil {
		t.Fatal(err)
	}
	crash(t, r)

	r = journaled(t, dir, nil, memstore.New())
	st := status1(t, r, 20)
	if !st.GetFenced() || !st.GetKnown() {
		t.Fatalf("after the restart: %+v, want fenced and vouched for", st)
	}
	wantHeld(t, r, 0)
	_, err := r.AddBlock(ctxT(t), addReq(t, 1))
	wantRefusal(t, err, codes.FailedPrecondition, ReasonFenced)
	late := &quorumpb.AddBlockRequest{Segment: released, BlockNo: 0, Lac: -1, Uploaded: -1, CreatedRevision: 20,
		Block: blockOf(t, testLog, testSeg+1, testEpoch, 0, "late")}
	_, err = r.AddBlock(ctxT(t), late)
	wantRefusal(t, err, codes.FailedPrecondition, ReasonFenced)
}

func TestJournaledReplicaForgetsWhatWasDroppedBeforeTheRestart(t *testing.T) {
	dir := t.TempDir()
	store := memstore.New()
	r := journaled(t, dir, nil, store)
	for n := range int64(3) {
		req := addReq(t, n)
		req.Uploader = true
		mustAdd(t, r, req)
	}
	if resp, err := r.Flush(ctxT(t), &quorumpb.FlushRequest{Segment: testSegment(), ThroughBlock: 2}); err != nil || resp.GetUploaded() != 2 {
		t.Fatalf("flush: %v, %v", resp, err)
	}
	// LAC 1 with the watermark at 2 drops blocks 0 and 1; the next block's
	// write records it.
	req := addReq(t, 3)
	req.Lac, req.Uploaded = 1, 2
	mustAdd(t, r, req)
	wantHeld(t, r, 2, 3)
	crash(t, r)

	r = journaled(t, dir, nil, stalledStore{store})
	wantHeld(t, r, 2, 3)
	st := status1(t, r, 20)
	if st.GetUploaded() != 1 || st.GetLac() != 1 {
		t.Fatalf("after the restart LAC %d, watermark %d; want at least the recorded drop (1) for both", st.GetLac(), st.GetUploaded())
	}
}

func TestJournalWriteFailureRefusesTheBlockAndHoldsNothing(t *testing.T) {
	dir := t.TempDir()
	efs := errorfs.Wrap(vfs.Default)
	r := journaled(t, dir, efs, memstore.New())
	mustAdd(t, r, addReq(t, 0))
	inj := efs.Inject(errorfs.Rule{Op: errorfs.OpSync, Pattern: "*.wal", DropUnsynced: true})
	_, err := r.AddBlock(ctxT(t), addReq(t, 1))
	wantRefusal(t, err, codes.Unavailable, "")
	inj.Remove()
	wantHeld(t, r, 0)
	if got := r.counter(t, "woodpecker_logstore_journal_errors_total", nil); got != 1 {
		t.Fatalf("journal_errors_total %v, want 1", got)
	}
	// The file is broken (what the failed sync covered may be gone): the
	// replica refuses the segment's blocks rather than acknowledge ones it
	// could lose.
	_, err = r.AddBlock(ctxT(t), addReq(t, 1))
	wantRefusal(t, err, codes.Unavailable, "")
	crash(t, r)
	r = journaled(t, dir, nil, memstore.New())
	wantHeld(t, r, 0)
}

func TestJournalIsRewrittenWhenWhatItHoldsIsMostlyDropped(t *testing.T) {
	dir := t.TempDir()
	r := journaled(t, dir, nil, memstore.New())
	big := func(n int64) *quorumpb.AddBlockRequest {
		req := addReq(t, n)
		req.Block = blockOf(t, testLog, testSeg, testEpoch, n, string(bytes.Repeat([]byte{byte(n)}, 1<<20)))
		req.Uploader = true
		req.Lac, req.Uploaded = n-2, -1
		return req
	}
	const blocks = 30 // 30 MiB written, at most 2 held
	for n := range int64(blocks) {
		mustAdd(t, r, big(n))
		if n >= 1 {
			// The uploader's watermark reaches the block before; the
			// LAC of the next add then drops it.
			if _, err := r.Flush(ctxT(t), &quorumpb.FlushRequest{Segment: testSegment(), ThroughBlock: n - 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := r.counter(t, "woodpecker_logstore_journal_rewrites_total", nil); got == 0 {
		t.Fatal("no rewrite after 30 MiB written with at most 2 MiB held")
	}
	info, err := os.Stat(filepath.Join(dir, "segments", "7-3.wal"))
	if err != nil {
		t.Fatal(err)
	}
	if limit := int64(2*3<<20 + rewriteSlack); info.Size() > limit {
		t.Fatalf("journal file %d bytes, want at most %d", info.Size(), limit)
	}
	held := status1(t, r, 0).GetBlocks()
	crash(t, r)
	r = journaled(t, dir, nil, memstore.New())
	wantHeld(t, r, held...)
}

func TestJournalOfAnotherNodeIsRefused(t *testing.T) {
	d, err := journal.Open(nil, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Revision("ls-a", 10); err != nil {
		t.Fatal(err)
	}
	_, err = d.Revision("ls-b", 11)
	if err == nil || errors.Is(err, journal.ErrCorrupt) {
		t.Fatalf("another node opening the journal: %v, want a refusal naming both", err)
	}
}

// A fence answered while an add is being synced lists the block if the add
// is acknowledged: no block is acknowledged that the fence did not see.
func TestFenceWaitsForAnAddBeingSynced(t *testing.T) {
	dir := t.TempDir()
	hfs := &holdingFS{FS: vfs.Default}
	r := journaled(t, dir, hfs, memstore.New())
	mustAdd(t, r, addReq(t, 0))
	syncing, release := make(chan struct{}), make(chan struct{})
	hfs.hold(syncing, release)
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free() // a failing test must not leave the add held
	added := make(chan error, 1)
	go func() {
		_, err := r.AddBlock(ctxT(t), addReq(t, 1))
		added <- err
	}()
	<-syncing
	fenced := make(chan *quorumpb.FenceResponse, 1)
	go func() {
		resp, err := r.Fence(ctxT(t), &quorumpb.FenceRequest{Segment: testSegment()})
		if err != nil {
			t.Error(err)
		}
		fenced <- resp
	}()
	select {
	case resp := <-fenced:
		t.Fatalf("the fence was answered (%v) while block 1 was being synced", resp.GetBlocks())
	case <-time.After(100 * time.Millisecond):
	}
	free()
	if err := <-added; err != nil {
		t.Fatal(err)
	}
	if got := (<-fenced).GetBlocks(); !slices.Equal(got, []int64{0, 1}) {
		t.Fatalf("the fence lists %v, want the acknowledged blocks 0 and 1", got)
	}
}

// holdingFS holds the first file sync after hold until release is closed,
// telling syncing when it starts; other operations go on meanwhile.
type holdingFS struct {
	vfs.FS
	mu      sync.Mutex
	syncing chan<- struct{}
	release <-chan struct{}
}

func (h *holdingFS) hold(syncing chan<- struct{}, release <-chan struct{}) {
	h.mu.Lock()
	h.syncing, h.release = syncing, release
	h.mu.Unlock()
}

func (h *holdingFS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	f, err := h.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return holdingFile{File: f, h: h}, nil
}

type holdingFile struct {
	vfs.File
	h *holdingFS
}

func (f holdingFile) Sync() error {
	f.h.mu.Lock()
	syncing, release := f.h.syncing, f.h.release
	f.h.syncing = nil
	f.h.mu.Unlock()
	if syncing != nil {
		syncing <- struct{}{}
		<-release
	}
	return f.File.Sync()
}
