package meta

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// WatchDeleted streams changes of logID's deleted-log record, which
// DeleteLog writes in the transaction that deletes the log (and garbage
// collection removes later), from now on. The first response is the
// created notification: a watcher that checks whether the log exists
// after it misses no deletion. The channel closes when ctx ends.
func (s *Store) WatchDeleted(ctx context.Context, logID int64) clientv3.WatchChan {
	return s.cli.Watch(ctx, s.deletedKey(logID), clientv3.WithCreatedNotify())
}
