package meta

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// DefaultCallTimeout bounds one etcd request of a Store made without
// WithCallTimeout.
const DefaultCallTimeout = 10 * time.Second

// Option adjusts New.
type Option func(*Store)

// WithCallTimeout bounds every etcd request the store makes (a read, a
// write, a transaction) by d; d <= 0 keeps DefaultCallTimeout. The etcd
// client waits for a connection without limit of its own, so without a
// bound a request to an etcd that went away would wait forever.
func WithCallTimeout(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.cli.timeout = d
		}
	}
}

// deadlineClient is the etcd client with a deadline on every request: its
// Get, Put, Delete and Txn end at the caller's deadline or after timeout,
// whichever comes first. Watches and leases are the embedded client's, as
// they are meant to last.
type deadlineClient struct {
	*clientv3.Client
	// kv carries the reads and writes: the client's own KV, or a wrapper
	// of it that WithKV installed (fault injection in tests).
	kv      clientv3.KV
	timeout time.Duration
}

// WithKV routes the store's reads, writes and transactions through
// wrap(kv), where kv is the etcd client's KV. Tests inject faults this way
// (see package metafault); deadlines still apply around the wrapper.
func WithKV(wrap func(clientv3.KV) clientv3.KV) Option {
	return func(s *Store) { s.cli.kv = wrap(s.cli.kv) }
}

func (c deadlineClient) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.kv.Get(ctx, key, opts...)
}

func (c deadlineClient) Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.kv.Put(ctx, key, val, opts...)
}

func (c deadlineClient) Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.kv.Delete(ctx, key, opts...)
}

// Txn returns a transaction whose Commit carries the deadline, counted
// from the Commit.
func (c deadlineClient) Txn(ctx context.Context) clientv3.Txn {
	return &deadlineTxn{c: c, ctx: ctx}
}

// deadlineTxn collects a transaction's parts and builds it on the
// client at Commit, under the deadline. Like etcd's own, it expects If,
// Then and Else in that order, each at most once.
type deadlineTxn struct {
	c         deadlineClient
	ctx       context.Context
	cmps      []clientv3.Cmp
	then, els []clientv3.Op
}

func (t *deadlineTxn) If(cs ...clientv3.Cmp) clientv3.Txn {
	t.cmps = append(t.cmps, cs...)
	return t
}

func (t *deadlineTxn) Then(ops ...clientv3.Op) clientv3.Txn {
	t.then = append(t.then, ops...)
	return t
}

func (t *deadlineTxn) Else(ops ...clientv3.Op) clientv3.Txn {
	t.els = append(t.els, ops...)
	return t
}

func (t *deadlineTxn) Commit() (*clientv3.TxnResponse, error) {
	ctx, cancel := context.WithTimeout(t.ctx, t.c.timeout)
	defer cancel()
	return t.c.kv.Txn(ctx).If(t.cmps...).Then(t.then...).Else(t.els...).Commit()
}
