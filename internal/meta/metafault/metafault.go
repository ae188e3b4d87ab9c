// Package metafault wraps an etcd KV with injected faults, the way
// internal/objstore/memstore injects object-store faults: a transaction
// that commits and then loses its reply, a request that fails before it
// reaches etcd, a delay, and a revision conflict (another client touched a
// compared key just before the transaction). Install it on a metadata
// store with meta.WithKV; the real etcd behind it keeps the state, so what
// the store sees is exactly what a client of a flaky etcd would see.
package metafault

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Kind is a kind of fault.
type Kind int

const (
	// Fail fails the request before it reaches etcd: nothing changes.
	Fail Kind = iota
	// LoseReply runs the request, then returns ErrReplyLost instead of its
	// response: a transaction's writes happened, but the caller cannot
	// know.
	LoseReply
	// Delay waits Rule.Delay (or until the request's context ends) before
	// running the request.
	Delay
	// Conflict rewrites every existing key the transaction compares with
	// its current value just before the transaction runs, so compares on
	// mod revisions fail as they do when another client raced it.
	Conflict
)

// Op is the kind of request a rule matches.
type Op int

// Request kinds.
const (
	AnyOp Op = iota
	GetOp
	PutOp
	DeleteOp
	TxnOp
)

// ErrInjected is the error of a Fail fault.
var ErrInjected = errors.New("metafault: injected failure")

// ErrReplyLost is the error of a LoseReply fault: the request ran.
var ErrReplyLost = errors.New("metafault: reply lost after the request ran")

// Rule selects requests and the fault they get.
type Rule struct {
	Kind Kind
	Op   Op
	// Key, when not empty, must be a substring of a key the request reads,
	// writes or compares.
	Key string
	// Skip lets that many matching requests through first.
	Skip int
	// Times is how many matching requests get the fault; 0 means every
	// one after Skip.
	Times int
	// Delay is the wait of a Delay fault.
	Delay time.Duration
}

type rule struct {
	Rule
	seen, hit int
}

// KV is a clientv3.KV with faults. It is safe for concurrent use.
type KV struct {
	clientv3.KV

	mu    sync.Mutex
	rules []*rule
	hits  map[Kind]int
}

// New wraps kv. With no rules it passes everything through.
func New(kv clientv3.KV) *KV { return &KV{KV: kv, hits: map[Kind]int{}} }

// Add installs a rule. Rules are tried in the order added; a request gets
// the fault of the first rule whose turn it is.
func (k *KV) Add(r Rule) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rules = append(k.rules, &rule{Rule: r})
}

// Reset removes every rule.
func (k *KV) Reset() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rules = nil
}

// Hits returns how many requests got a fault of kind.
func (k *KV) Hits(kind Kind) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.hits[kind]
}

// pick returns the rule a request of op touching keys gets, if any.
func (k *KV) pick(op Op, keys [][]byte) (Rule, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, r := range k.rules {
		if r.Op != AnyOp && r.Op != op {
			continue
		}
		if r.Key != "" && !touches(keys, r.Key) {
			continue
		}
		if r.Times > 0 && r.hit >= r.Times {
			continue
		}
		r.seen++
		if r.seen <= r.Skip {
			continue
		}
		r.hit++
		k.hits[r.Kind]++
		return r.Rule, true
	}
	return Rule{}, false
}

func touches(keys [][]byte, sub string) bool {
	for _, k := range keys {
		if bytes.Contains(k, []byte(sub)) {
			return true
		}
	}
	return false
}

// do runs one request under the fault its rule picks.
func do[T any](ctx context.Context, k *KV, op Op, keys [][]byte, cmps []clientv3.Cmp, run func() (T, error)) (T, error) {
	var zero T
	r, ok := k.pick(op, keys)
	if !ok {
		return run()
	}
	switch r.Kind {
	case Fail:
		return zero, errors.Wrapf(ErrInjected, "request on %q", keys)
	case Delay:
		t := time.NewTimer(r.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return zero, ctx.Err()
		}
		return run()
	case Conflict:
		for _, c := range cmps {
			if err := k.touch(ctx, c.KeyBytes()); err != nil {
				return zero, err
			}
		}
		return run()
	case LoseReply:
		if _, err := run(); err != nil {
			return zero, err
		}
		return zero, errors.Wrapf(ErrReplyLost, "request on %q", keys)
	}
	return run()
}

// touch rewrites key with its value, moving its mod revision.
func (k *KV) touch(ctx context.Context, key []byte) error {
	resp, err := k.KV.Get(ctx, string(key))
	if err != nil {
		return err
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	_, err = k.KV.Put(ctx, string(key), string(resp.Kvs[0].Value))
	return err
}

// Get reads through the fault rules.
func (k *KV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	return do(ctx, k, GetOp, [][]byte{[]byte(key)}, nil, func() (*clientv3.GetResponse, error) {
		return k.KV.Get(ctx, key, opts...)
	})
}

// Put writes through the fault rules.
func (k *KV) Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error) {
	return do(ctx, k, PutOp, [][]byte{[]byte(key)}, nil, func() (*clientv3.PutResponse, error) {
		return k.KV.Put(ctx, key, val, opts...)
	})
}

// Delete deletes through the fault rules.
func (k *KV) Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error) {
	return do(ctx, k, DeleteOp, [][]byte{[]byte(key)}, nil, func() (*clientv3.DeleteResponse, error) {
		return k.KV.Delete(ctx, key, opts...)
	})
}

// Txn returns a transaction whose Commit goes through the fault rules.
func (k *KV) Txn(ctx context.Context) clientv3.Txn { return &txn{k: k, ctx: ctx} }

type txn struct {
	k         *KV
	ctx       context.Context
	cmps      []clientv3.Cmp
	then, els []clientv3.Op
}

func (t *txn) If(cs ...clientv3.Cmp) clientv3.Txn   { t.cmps = append(t.cmps, cs...); return t }
func (t *txn) Then(ops ...clientv3.Op) clientv3.Txn { t.then = append(t.then, ops...); return t }
func (t *txn) Else(ops ...clientv3.Op) clientv3.Txn { t.els = append(t.els, ops...); return t }

func (t *txn) Commit() (*clientv3.TxnResponse, error) {
	var keys [][]byte
	for _, c := range t.cmps {
		keys = append(keys, c.KeyBytes())
	}
	for _, o := range append(append([]clientv3.Op(nil), t.then...), t.els...) {
		keys = append(keys, o.KeyBytes())
	}
	return do(t.ctx, t.k, TxnOp, keys, t.cmps, func() (*clientv3.TxnResponse, error) {
		return t.k.KV.Txn(t.ctx).If(t.cmps...).Then(t.then...).Else(t.els...).Commit()
	})
}
