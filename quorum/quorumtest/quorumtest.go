// Package quorumtest starts LogStore replicas inside a test process, for
// tests of QuorumBuffer clients. Tests that kill or pause a LogStore start
// `woodpecker logstore` processes instead.
package quorumtest

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/quorum"
	"github.com/woodpecker-wal/woodpecker/quorum/logstore"
	"github.com/woodpecker-wal/woodpecker/quorum/logstore/journal"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/shared"
)

// Cluster is a set of in-process LogStores.
type Cluster struct {
	Nodes   []quorum.Node
	Servers []*logstore.Server

	journals bool          // StartJournaled
	metaRoot string        // StartShared: the clients' etcd root
	window   time.Duration // StartShared: the LogStores' batch window
}

// Addrs returns the nodes' addresses.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr
	}
	return out
}

// Start starts n LogStores on 127.0.0.1 that upload to store under root
// (the client's object backend root, "" by default), each with budget
// bytes of memory. They stop when the test ends. Each takes etcd's current
// revision as its registration revision, as a registered LogStore would,
// so it vouches for the segments placed after it started.
func Start(t testing.TB, etcd *clientv3.Client, n int, store objstore.Store, root string, budget int64) *Cluster {
	t.Helper()
	c := &Cluster{}
	for i := range n {
		c.start(t, etcd, fmt.Sprintf("ls-%d", i), "127.0.0.1:0", store, root, budget)
	}
	return c
}

// StartJournaled is Start with durable LogStores: each keeps a journal in a
// directory of the test's (logstore --data-dir), so that an add is synced
// to disk before it is acknowledged.
func StartJournaled(t testing.TB, etcd *clientv3.Client, n int, store objstore.Store, root string, budget int64) *Cluster {
	t.Helper()
	c := &Cluster{journals: true}
	for i := range n {
		c.start(t, etcd, fmt.Sprintf("ls-%d", i), "127.0.0.1:0", store, root, budget)
	}
	return c
}

// StartShared is Start with LogStores that write shared objects for the
// segments clients place in them (writer.batchWindow > 0), one per window
// (logstore --batch-window), committing them in etcd under metaRoot, the
// clients' etcd.rootPath.
func StartShared(t testing.TB, etcd *clientv3.Client, metaRoot string, window time.Duration, n int, store objstore.Store,
	root string, budget int64) *Cluster {
	t.Helper()
	c := &Cluster{metaRoot: metaRoot, window: window}
	for i := range n {
		c.start(t, etcd, fmt.Sprintf("ls-%d", i), "127.0.0.1:0", store, root, budget)
	}
	return c
}

// Restart replaces node i with a fresh LogStore on the same address: its
// memory is empty, and it registered after every segment placed so far.
func (c *Cluster) Restart(t testing.TB, etcd *clientv3.Client, i int, store objstore.Store, root string, budget int64) {
	t.Helper()
	_ = c.Servers[i].Close()
	n := len(c.Nodes)
	c.start(t, etcd, c.Nodes[i].ID, c.Nodes[i].Addr, store, root, budget)
	c.Nodes[i], c.Servers[i] = c.Nodes[n], c.Servers[n]
	c.Nodes, c.Servers = c.Nodes[:n], c.Servers[:n]
}

func (c *Cluster) start(t testing.TB, etcd *clientv3.Client, id, addr string, store objstore.Store, root string, budget int64) {
	t.Helper()
	resp, err := etcd.Get(context.Background(), "quorumtest-registration")
	if err != nil {
		t.Fatal(err)
	}
	{
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		cfg := logstore.Config{NodeID: id, Addr: ln.Addr().String(), BudgetBytes: budget,
			Store: store, Root: root, RegisteredRevision: resp.Header.Revision}
		if c.journals {
			if cfg.Journal, err = journal.Open(nil, t.TempDir()); err != nil {
				_ = ln.Close()
				t.Fatal(err)
			}
		}
		if c.metaRoot != "" {
			cfg.Shared = shared.NewUploader(segment.NewObjectBackend(store, root, 4), meta.New(etcd, c.metaRoot),
				shared.StreamConfig{Window: c.window, ObjectSize: 8 << 20, MaxInflight: 4,
					RetryTimeout: 30 * time.Second, RetryInitial: 20 * time.Millisecond, RetryMax: time.Second}, nil)
		}
		srv, err := logstore.New(cfg)
		if err != nil {
			_ = ln.Close()
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.Serve(ln)
		}()
		t.Cleanup(func() {
			_ = srv.Close()
			<-done
			if cfg.Shared != nil {
				_ = cfg.Shared.Close()
			}
		})
		c.Nodes = append(c.Nodes, quorum.Node{ID: id, Addr: ln.Addr().String()})
		c.Servers = append(c.Servers, srv)
	}
}

// Register registers every node in the etcd registry under root, as
// `woodpecker logstore` does, under a lease revoked when the test ends.
func (c *Cluster) Register(t testing.TB, etcd *clientv3.Client, root string) {
	t.Helper()
	ctx := context.Background()
	// Long enough for any test: the cleanup revokes it.
	lease, err := etcd.Grant(ctx, 3600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = etcd.Revoke(context.Background(), lease.ID) })
	for _, n := range c.Nodes {
		if _, err := quorum.Register(ctx, etcd, root, n, lease.ID); err != nil {
			t.Fatal(err)
		}
	}
}
