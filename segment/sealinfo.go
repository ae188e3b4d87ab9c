package segment

import "github.com/cockroachdb/errors"

// EncodeSealInfo encodes the seal record of a segment of blocks
// 0..info.Blocks-1. It is deterministic, so a retried write of the same
// seal finds identical bytes. The record carries no per-block index: blocks
// are self-describing and a reader learns their entry ranges as it reads.
func EncodeSealInfo(logID, segID, epoch int64, info SealInfo) ([]byte, error) {
	rec, err := EncodeSeal(SealRecord{
		LogID: logID, SegmentID: segID, Epoch: epoch,
		LastEntry: info.LastEntry, EntryCount: info.LastEntry + 1,
		TotalBytes: info.Bytes, FenceBlockNo: -1, BlockCount: info.Blocks,
	})
	if err != nil {
		// The record is built from values the writer or recovery derived:
		// an inconsistency is a bug, not bad input.
		return nil, errors.NewAssertionErrorWithWrappedErrf(err, "seal of segment %d of log %d", segID, logID)
	}
	return rec, nil
}

// DecodeSealInfo decodes a seal record written by EncodeSealInfo (or any
// valid seal record) into a SealInfo.
func DecodeSealInfo(data []byte) (SealInfo, error) {
	r, err := DecodeSeal(data)
	if err != nil {
		return SealInfo{}, err
	}
	blocks := r.BlockCount
	if len(r.Objects) > 0 {
		blocks = int64(len(r.Objects))
	}
	return SealInfo{LastEntry: r.LastEntry, Blocks: blocks, Bytes: r.TotalBytes}, nil
}
