package gc

import (
	"context"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/shared"
)

// Shared objects (docs/shared-objects.md) hold blocks of many logs. An
// object is needed while one of the segments its record names still reads
// from it: the segment exists, is not being deleted, and is in generation 0
// (its blocks are in shared objects) or has just been compacted and its
// readers' grace period is still running (Retiring). These conditions only
// ever turn from needed to not needed, so a collector that read them a
// moment ago never deletes what is needed. Objects without a record are
// uploads that were never committed (a crash between PUT and commit, a
// zombie's object): orphans once older than the orphan grace period,
// which options keep above the upload timeout, so no commit can still be
// in flight for them.

// SharedObjectsLockID is the id under which a collector locks the sweep of
// shared objects (log ids are never negative).
const SharedObjectsLockID = -1

// sharedPage is how many records and objects one request reads.
const sharedPage = 1000

// sweepShared deletes the shared objects no segment needs and the orphans.
func (p *pass) sweepShared(ctx context.Context, _ meta.GCLock) error {
	segs := map[int64]map[int64]meta.SegmentMeta{} // by log, then segment; read once per pass
	needed := func(logID, segID int64) (bool, error) {
		bySeg, ok := segs[logID]
		if !ok {
			list, err := p.c.meta.Segments(ctx, logID)
			if err != nil {
				return true, err
			}
			bySeg = make(map[int64]meta.SegmentMeta, len(list))
			for _, sm := range list {
				bySeg[sm.ID] = sm
			}
			segs[logID] = bySeg
		}
		sm, ok := bySeg[segID]
		return ok && !sm.Deleting && (sm.Generation == 0 || sm.Retiring), nil
	}
	// Records first, objects after: an object committed in between is
	// young, and the orphan grace period spares it.
	recorded := map[string]bool{}
	root := p.c.st.KeyRoot()
	after := ""
	for {
		recs, names, err := p.c.meta.SharedObjects(ctx, after, sharedPage)
		if err != nil {
			return err
		}
		for _, name := range names {
			recorded[name] = true
			keep := false
			for _, s := range recs[name].Segments {
				if keep, err = needed(s[0], s[1]); err != nil || keep {
					break
				}
			}
			if err != nil {
				return err
			}
			if keep {
				continue
			}
			if err := p.c.step(PointDeleteShared); err != nil {
				return err
			}
			if err := p.c.st.Store().Delete(ctx, name); err != nil && !errors.Is(err, objstore.ErrNotFound) {
				return errors.Wrapf(err, "delete shared object %s", name)
			}
			p.rep.DeletedObjects++
			p.c.metrics.DeletedObjects.Add(1)
			if err := p.c.step(PointRemoveSharedRecord); err != nil {
				return err
			}
			if err := p.c.meta.RemoveSharedObject(ctx, name); err != nil {
				return err
			}
		}
		if len(names) < sharedPage {
			break
		}
		after = names[len(names)-1]
	}
	prefix := shared.ObjectKey(root, "")
	startAfter := ""
	for {
		page, err := p.c.st.Store().List(ctx, prefix, startAfter, sharedPage)
		if err != nil {
			return errors.Wrap(err, "list shared objects")
		}
		for _, o := range page.Objects {
			if recorded[o.Key] || !due(orphan, meta.SegmentMeta{}, o.LastModified, p.now, p.c.cfg) {
				continue
			}
			if err := p.deleteObject(ctx, PointDeleteOrphan, o); err != nil {
				return err
			}
		}
		if !page.More || len(page.Objects) == 0 {
			return nil
		}
		startAfter = page.Objects[len(page.Objects)-1].Key
	}
}
