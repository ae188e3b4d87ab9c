// Package quorumtest starts LogStore replicas inside a test process, for
// tests of QuorumBuffer clients. Tests that kill or pause a LogStore start
// `woodpecker logstore` processes instead.
package quorumtest

import (
	"fmt"
	"net"
	"testing"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/quorum"
	"github.com/woodpecker-wal/woodpecker/quorum/logstore"
)

// Cluster is a set of in-process LogStores.
type Cluster struct {
	Nodes   []quorum.Node
	Servers []*logstore.Server
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
// bytes of memory. They stop when the test ends.
func Start(t testing.TB, n int, store objstore.Store, root string, budget int64) *Cluster {
	t.Helper()
	c := &Cluster{}
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("ls-%d", i)
		srv, err := logstore.New(logstore.Config{NodeID: id, Addr: ln.Addr().String(), BudgetBytes: budget,
			Store: store, Root: root})
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
		})
		c.Nodes = append(c.Nodes, quorum.Node{ID: id, Addr: ln.Addr().String()})
		c.Servers = append(c.Servers, srv)
	}
	return c
}
