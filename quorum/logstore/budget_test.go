package logstore

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
)

// TestBlockBudget: with BudgetBlocks, a replica holding that many blocks
// refuses more (however small), except the block after the LAC.
func TestBlockBudget(t *testing.T) {
	r := startReplica(t, Config{BudgetBytes: 1 << 30, BudgetBlocks: 2, Store: stalledStore{memstore.New()}})
	mustAdd(t, r, addReq(t, 1))
	mustAdd(t, r, addReq(t, 2))
	_, err := r.AddBlock(ctxT(t), addReq(t, 3))
	wantRefusal(t, err, codes.ResourceExhausted, ReasonBudget)
	mustAdd(t, r, addReq(t, 0)) // the block after the LAC
	wantHeld(t, r, 0, 1, 2)
}

// TestOverTheBudgetTheBlocksThatFreeMemoryStillFit: a full replica
// refuses blocks, except the block after the LAC (without it no later
// block can be acknowledged, so nothing held above the LAC could ever be
// dropped) and, on the uploader, the next block to upload (without it
// nothing can be uploaded). Refusing them would leave the replica full for
// good.
func TestOverTheBudgetTheBlocksThatFreeMemoryStillFit(t *testing.T) {
	size := int64(len(block(t, 0)))
	// Uploads never finish: the uploader's memory frees only by drops.
	r := startReplica(t, Config{BudgetBytes: 2*size + size/2, Store: stalledStore{memstore.New()}})
	// Blocks 1 and 2 arrived, block 0 did not: the replica is full of
	// blocks above a LAC of -1.
	mustAdd(t, r, addReq(t, 1))
	mustAdd(t, r, addReq(t, 2))
	_, err := r.AddBlock(ctxT(t), addReq(t, 3))
	wantRefusal(t, err, codes.ResourceExhausted, ReasonBudget)
	mustAdd(t, r, addReq(t, 0)) // the block after the LAC
	wantHeld(t, r, 0, 1, 2)

	// The uploader, full of blocks above its watermark (the LAC is 1),
	// takes the next block to upload.
	u := startReplica(t, Config{BudgetBytes: 2*size + size/2, Store: stalledStore{memstore.New()}})
	for _, n := range []int64{2, 3} {
		req := addReq(t, n)
		req.Uploader, req.Lac = true, 1
		mustAdd(t, u, req)
	}
	req := addReq(t, 4)
	req.Uploader, req.Lac = true, 1
	_, err = u.AddBlock(ctxT(t), req)
	wantRefusal(t, err, codes.ResourceExhausted, ReasonBudget)
	req = addReq(t, 0)
	req.Uploader, req.Lac = true, 1
	mustAdd(t, u, req) // the next to upload
	wantHeld(t, u, 0, 2, 3)
}
