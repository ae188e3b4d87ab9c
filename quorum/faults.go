package quorum

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
)

// Faults wraps a Transport and injects faults into the calls made through
// it, for in-process tests: partition a replica (every call fails
// Unavailable), drop its replies after the call ran, delay its calls, or
// fail the Nth call of a method. It is safe for concurrent use.
type Faults struct {
	Transport

	mu         sync.Mutex
	partitions map[string]bool
	dropReply  map[string]bool
	delays     map[string]time.Duration
	failNth    map[string]int // method -> calls left until one fails
	calls      map[string]int // method -> calls made
	hooks      map[string]func()
	noWatch    map[string]bool
}

// NewFaults wraps t with no fault.
func NewFaults(t Transport) *Faults {
	return &Faults{Transport: t, partitions: map[string]bool{}, dropReply: map[string]bool{},
		delays: map[string]time.Duration{}, failNth: map[string]int{}, calls: map[string]int{},
		hooks: map[string]func(){}, noWatch: map[string]bool{}}
}

// Partition cuts (or, with on false, heals) the link to the replica at addr.
func (f *Faults) Partition(addr string, on bool) { f.set(func() { f.partitions[addr] = on }) }

// NoWatch makes Watch calls to addr fail UNIMPLEMENTED, as a LogStore
// that predates the call answers them.
func (f *Faults) NoWatch(addr string, on bool) { f.set(func() { f.noWatch[addr] = on }) }

// DropReplies makes calls to addr run and then lose their reply.
func (f *Faults) DropReplies(addr string, on bool) { f.set(func() { f.dropReply[addr] = on }) }

// Delay delays every call to addr by d (0: no delay).
func (f *Faults) Delay(addr string, d time.Duration) { f.set(func() { f.delays[addr] = d }) }

// FailNth fails the nth call (1-based, counted from now) of method
// ("AddBlock", "Fence", ...) to any replica, before it is sent.
func (f *Faults) FailNth(method string, n int) { f.set(func() { f.failNth[method] = n }) }

// BeforeNext runs fn once, before the next call of method to any replica
// is sent; concurrent calls of method wait until it returned. A test
// changes the world at an exact step of a protocol with it.
func (f *Faults) BeforeNext(method string, fn func()) {
	var once sync.Once
	f.set(func() { f.hooks[method] = func() { once.Do(fn) } })
}

// Calls returns how many calls of method went through the wrapper.
func (f *Faults) Calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *Faults) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// Replica implements Transport.
func (f *Faults) Replica(addr string) (quorumpb.LogStoreClient, error) {
	c, err := f.Transport.Replica(addr)
	if err != nil {
		return nil, err
	}
	return faultyReplica{f: f, addr: addr, c: c}, nil
}

// before decides a call's fate: the delay to wait first, whether to drop
// the reply, and an error to return without calling.
func (f *Faults) before(addr, method string) (delay time.Duration, drop bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[method]++
	if n, ok := f.failNth[method]; ok {
		if n <= 1 {
			delete(f.failNth, method)
			return 0, false, status.Errorf(codes.Unavailable, "quorum faults: call of %s to %s failed", method, addr)
		}
		f.failNth[method] = n - 1
	}
	if f.partitions[addr] {
		return 0, false, status.Errorf(codes.Unavailable, "quorum faults: %s is partitioned", addr)
	}
	return f.delays[addr], f.dropReply[addr], nil
}

func call[Req, Resp any](ctx context.Context, r faultyReplica, method string, req Req,
	fn func(context.Context, Req, ...grpc.CallOption) (Resp, error), opts []grpc.CallOption) (Resp, error) {
	var zero Resp
	r.f.mu.Lock()
	hook := r.f.hooks[method]
	r.f.mu.Unlock()
	if hook != nil {
		hook()
	}
	delay, drop, err := r.f.before(r.addr, method)
	if err != nil {
		return zero, err
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return zero, status.FromContextError(ctx.Err()).Err()
		}
	}
	resp, err := fn(ctx, req, opts...)
	if err == nil && drop {
		return zero, status.Errorf(codes.Unavailable, "quorum faults: reply of %s from %s lost", method, r.addr)
	}
	return resp, err
}

type faultyReplica struct {
	f    *Faults
	addr string
	c    quorumpb.LogStoreClient
}

func (r faultyReplica) AddBlock(ctx context.Context, in *quorumpb.AddBlockRequest, opts ...grpc.CallOption) (*quorumpb.AddBlockResponse, error) {
	return call(ctx, r, "AddBlock", in, r.c.AddBlock, opts)
}

func (r faultyReplica) Fence(ctx context.Context, in *quorumpb.FenceRequest, opts ...grpc.CallOption) (*quorumpb.FenceResponse, error) {
	return call(ctx, r, "Fence", in, r.c.Fence, opts)
}

func (r faultyReplica) ReadBlock(ctx context.Context, in *quorumpb.ReadBlockRequest, opts ...grpc.CallOption) (*quorumpb.ReadBlockResponse, error) {
	return call(ctx, r, "ReadBlock", in, r.c.ReadBlock, opts)
}

func (r faultyReplica) Status(ctx context.Context, in *quorumpb.StatusRequest, opts ...grpc.CallOption) (*quorumpb.FenceResponse, error) {
	return call(ctx, r, "Status", in, r.c.Status, opts)
}

func (r faultyReplica) Flush(ctx context.Context, in *quorumpb.FlushRequest, opts ...grpc.CallOption) (*quorumpb.FlushResponse, error) {
	return call(ctx, r, "Flush", in, r.c.Flush, opts)
}

func (r faultyReplica) Release(ctx context.Context, in *quorumpb.ReleaseRequest, opts ...grpc.CallOption) (*quorumpb.ReleaseResponse, error) {
	return call(ctx, r, "Release", in, r.c.Release, opts)
}

// Watch opens the stream through the faults of its call; a partition of
// addr also breaks the open stream (at its next event, which is dropped).
func (r faultyReplica) Watch(ctx context.Context, in *quorumpb.WatchRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[quorumpb.WatchEvent], error) {
	r.f.mu.Lock()
	no := r.f.noWatch[r.addr]
	r.f.mu.Unlock()
	if no {
		r.f.mu.Lock()
		r.f.calls["Watch"]++
		r.f.mu.Unlock()
		return nil, status.Errorf(codes.Unimplemented, "quorum faults: %s does not implement Watch", r.addr)
	}
	ctx, cancel := context.WithCancel(ctx)
	s, err := call(ctx, r, "Watch", in, r.c.Watch, opts)
	if err != nil {
		cancel()
		return nil, err
	}
	return faultyStream{ServerStreamingClient: s, r: r, cancel: cancel}, nil
}

type faultyStream struct {
	grpc.ServerStreamingClient[quorumpb.WatchEvent]
	r      faultyReplica
	cancel context.CancelFunc
}

func (s faultyStream) Recv() (*quorumpb.WatchEvent, error) {
	ev, err := s.ServerStreamingClient.Recv()
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.r.f.mu.Lock()
	cut := s.r.f.partitions[s.r.addr]
	s.r.f.mu.Unlock()
	if cut {
		s.cancel()
		return nil, status.Errorf(codes.Unavailable, "quorum faults: %s is partitioned", s.r.addr)
	}
	return ev, nil
}
