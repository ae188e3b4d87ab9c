package quorum

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// Node is a LogStore as registered in etcd.
type Node struct {
	// ID names the node; unique in the cluster (by default its address).
	ID string `json:"id"`
	// Addr is the gRPC address clients dial.
	Addr string `json:"addr"`
	// Zone is the node's failure domain; ensembles spread across zones.
	Zone string `json:"zone,omitempty"`
	// Revision is the etcd revision at which the node registered: a node
	// that knows nothing of a segment placed after it registered held
	// nothing of it (see docs/quorum.md). Not stored.
	Revision int64 `json:"-"`
}

// RegistryPrefix is the etcd prefix of the LogStore registry under the
// metadata root: <root>/logstores/<id>.
func RegistryPrefix(root string) string { return strings.TrimSuffix(root, "/") + "/logstores/" }

// Register puts n under the lease, so the entry disappears when the node
// stops renewing it, and returns the revision of the registration.
func Register(ctx context.Context, cli *clientv3.Client, root string, n Node, lease clientv3.LeaseID) (int64, error) {
	v, err := json.Marshal(n)
	if err != nil {
		return 0, errors.Wrap(err, "register logstore")
	}
	resp, err := cli.Put(ctx, RegistryPrefix(root)+n.ID, string(v), clientv3.WithLease(lease))
	if err != nil {
		return 0, errors.Wrapf(err, "register logstore %s", n.ID)
	}
	return resp.Header.Revision, nil
}

// Nodes lists the registered LogStores in id order.
func Nodes(ctx context.Context, cli *clientv3.Client, root string) ([]Node, error) {
	resp, err := cli.Get(ctx, RegistryPrefix(root), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, errors.Wrap(err, "list logstores")
	}
	nodes := make([]Node, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var n Node
		if err := json.Unmarshal(kv.Value, &n); err != nil {
			return nil, errors.Wrapf(walerr.ErrCorrupt, "logstore registration %s: %v", kv.Key, err)
		}
		n.Revision = kv.CreateRevision
		nodes = append(nodes, n)
	}
	return nodes, nil
}
