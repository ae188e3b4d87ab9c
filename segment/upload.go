package segment

import (
	"context"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
)

// UploadBlock puts block blockNo of segment ref under root exactly as the
// object backend's sink does: create-only, and a retry or a second
// uploader of the same bytes succeeds. QuorumBuffer's replicas and
// recovering writers upload through it, so that the object store holds
// one copy of each block whoever uploads it.
func UploadBlock(ctx context.Context, store objstore.Store, root string, ref Ref, blockNo int64, block []byte) error {
	return createOnce(ctx, store, BlockKey(root, ref.LogID, ref.SegmentID, blockNo), block)
}
