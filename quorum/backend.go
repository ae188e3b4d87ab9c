package quorum

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/shared"
)

// Config configures a Backend.
type Config struct {
	// Objects is where the replicas upload blocks, and where sealed
	// segments are read: the object backend MemoryBuffer would use.
	Objects *segment.ObjectBackend
	// Shared, when set, reads and seals segments whose LogStores upload
	// into shared objects (docs/shared-objects.md), over Objects and
	// the etcd index; with SharedObjects new segments are placed so.
	Shared        *shared.Backend
	SharedObjects bool
	// Transport reaches the replicas.
	Transport Transport
	// Etcd and Root locate the LogStore registry (quorum.Nodes). Unused
	// when Nodes is set.
	Etcd *clientv3.Client
	Root string
	// Nodes, when not empty, is a fixed set of LogStores to place
	// segments on instead of the registry.
	Nodes []Node
	// Parallel is how many blocks a writer keeps in flight.
	Parallel int
	// CallTimeout bounds each call to a replica.
	CallTimeout time.Duration
	// SealStall is how long a seal keeps trying to make the segment's
	// blocks durable in object storage while none gets there (the
	// writer's retry timeout); 0: a minute. SealInitialBackoff and
	// SealMaxBackoff space its attempts; 0: 50 ms and 2 s.
	SealStall          time.Duration
	SealInitialBackoff time.Duration
	SealMaxBackoff     time.Duration
}

// Backend is QuorumBuffer's segment backend. The object backend it embeds
// serves what is in object storage (sealed segments, compaction and
// garbage collection); writes, recovery and reads of the not-yet-uploaded
// tail go to the segment's ensemble of replicas.
type Backend struct {
	// Backend serves what is in object storage, in the per-log layout
	// or in shared objects, by the segment's placement.
	*shared.Backend
	cfg Config

	mu     sync.Mutex
	placed map[string]int // node id -> segments this client placed on it
	// live are the nodes registered at the last placement (or Config.Nodes).
	live []Node
	// known are the nodes ever seen registered, by id: they fill an
	// ensemble when fewer than EnsembleSize are registered.
	known map[string]Node
	// suspects are the nodes that did not answer a sink's add, by id, and
	// when (heard).
	suspects map[string]time.Time
}

// suspectFor is how long a node that did not answer an add is avoided by
// placements that have enough other nodes, unless it answers meanwhile.
const suspectFor = 30 * time.Second

var (
	_ segment.Backend       = (*Backend)(nil)
	_ segment.Placer        = (*Backend)(nil)
	_ segment.BlockLocator  = (*Backend)(nil)
	_ segment.LatestScanner = (*Backend)(nil)
)

// New returns a backend.
func New(cfg Config) *Backend {
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 5 * time.Second
	}
	if cfg.SealStall <= 0 {
		cfg.SealStall = time.Minute
	}
	if cfg.SealInitialBackoff <= 0 {
		cfg.SealInitialBackoff = 50 * time.Millisecond
	}
	if cfg.SealMaxBackoff < cfg.SealInitialBackoff {
		cfg.SealMaxBackoff = max(2*time.Second, cfg.SealInitialBackoff)
	}
	if cfg.Shared == nil {
		cfg.Shared = shared.NewBackend(cfg.Objects, nil, shared.StreamConfig{}, nil)
		cfg.SharedObjects = false
	}
	return &Backend{Backend: cfg.Shared, cfg: cfg, placed: map[string]int{}, known: map[string]Node{},
		suspects: map[string]time.Time{}}
}

// Parallel implements segment.Backend.
func (b *Backend) Parallel() int { return max(b.cfg.Parallel, 1) }

// Describe implements segment.Backend.
func (b *Backend) Describe() string {
	return "quorum of LogStores uploading to " + b.ObjectBackend.Describe()
}

// placement is what the backend stores in a segment's record.
type placement struct {
	Nodes []Node `json:"nodes"`
	// Revision is the etcd revision at which the ensemble was chosen: a
	// replica registered after it that knows nothing of the segment may
	// have lost it in a restart.
	Revision int64 `json:"revision"`
}

func parsePlacement(ref segment.Ref) (placement, error) {
	var p placement
	if err := json.Unmarshal([]byte(shared.InnerPlacement(ref.Placement)), &p); err != nil || len(p.Nodes) != EnsembleSize {
		return placement{}, errors.Wrapf(walerr.ErrCorrupt, "segment %d of log %d: placement %q is not an ensemble of %d LogStores",
			ref.SegmentID, ref.LogID, ref.Placement, EnsembleSize)
	}
	return p, nil
}

// Place implements segment.Placer: it chooses the segment's ensemble,
// spreading it over zones and preferring the nodes this client loaded
// least, and avoiding the nodes that recently failed a block while enough
// others are registered.
//
// With fewer than EnsembleSize nodes registered (one of exactly 3 is gone)
// it fills the ensemble with nodes that were registered before: the
// segment is then written to the registered ones, which acknowledge it
// with AckQuorum of them, as a degraded segment is. Writes go on with one
// LogStore of three down, as they do within a segment; with fewer than
// AckQuorum registered, placement fails (ErrNoQuorum).
func (b *Backend) Place(ctx context.Context, ref segment.Ref) (string, error) {
	nodes, rev := b.cfg.Nodes, int64(0)
	if b.cfg.Etcd != nil {
		// The revision tells replicas that restarted since (and so
		// registered later) that they may have lost the segment, also
		// when the client was given a fixed node list.
		resp, err := b.cfg.Etcd.Get(ctx, RegistryPrefix(b.cfg.Root), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return "", errors.Wrap(err, "place segment: read the LogStore registry")
		}
		rev = resp.Header.Revision
	}
	if len(nodes) == 0 {
		if b.cfg.Etcd == nil {
			return "", errors.Wrap(ErrNoQuorum, "place segment: no LogStore configured and no etcd registry")
		}
		var err error
		if nodes, err = Nodes(ctx, b.cfg.Etcd, b.cfg.Root); err != nil {
			return "", errors.Wrap(err, "place segment")
		}
	}
	b.mu.Lock()
	chosen := b.chooseLocked(nodes, time.Now())
	if len(nodes) >= AckQuorum && len(chosen) == EnsembleSize {
		for _, n := range chosen {
			b.placed[n.ID]++
		}
	}
	b.mu.Unlock()
	if len(nodes) < AckQuorum || len(chosen) < EnsembleSize {
		return "", errors.Wrapf(ErrNoQuorum, "place segment %d of log %d: %d LogStores are registered, a segment needs %d (%d to acknowledge)",
			ref.SegmentID, ref.LogID, len(nodes), EnsembleSize, AckQuorum)
	}
	v, err := json.Marshal(placement{Nodes: chosen, Revision: rev})
	if b.cfg.SharedObjects {
		return shared.WithPlacement(string(v)), err
	}
	return string(v), err
}

// chooseLocked picks the ensemble among the registered nodes: those not
// suspect when there are enough, else all of them, else all of them and
// nodes known from earlier registrations. It records nodes as live and
// known. Requires b.mu.
func (b *Backend) chooseLocked(nodes []Node, now time.Time) []Node {
	b.live = nodes
	for _, n := range nodes {
		b.known[n.ID] = n
	}
	healthy := slices.DeleteFunc(slices.Clone(nodes), func(n Node) bool { return b.suspectLocked(n.ID, now) })
	if chosen := chooseEnsemble(healthy, b.placed); len(chosen) == EnsembleSize {
		return chosen
	}
	chosen := chooseEnsemble(nodes, b.placed)
	gone := make([]Node, 0, len(b.known))
	for id, n := range b.known {
		if !slices.ContainsFunc(nodes, func(r Node) bool { return r.ID == id }) {
			gone = append(gone, n)
		}
	}
	slices.SortFunc(gone, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	for _, n := range gone {
		if len(chosen) == EnsembleSize {
			break
		}
		chosen = append(chosen, Node{ID: n.ID, Addr: n.Addr, Zone: n.Zone})
	}
	return chosen
}

// suspectLocked reports whether node id failed a block within suspectFor.
// Requires b.mu.
func (b *Backend) suspectLocked(id string, now time.Time) bool {
	at, ok := b.suspects[id]
	if ok && now.Sub(at) >= suspectFor {
		delete(b.suspects, id)
		return false
	}
	return ok
}

// heard records how node id answered an add: one that did not answer
// (unreachable, timed out, out of memory) is suspect; any answer from the
// node itself, a refusal included, clears it: a node that restarted with
// an empty memory refuses its old segments but takes new ones, so a roll
// helps.
func (b *Backend) heard(id string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		b.suspects[id] = time.Now()
	case codes.Canceled: // the writer's own end: says nothing of the node
	default:
		delete(b.suspects, id)
	}
}

// rollHelps reports whether a new placement could avoid every node that
// recently did not answer an add: at least EnsembleSize nodes registered at
// the last placement are not suspect. A degraded segment rolls only then: a
// roll onto the same dead node would make one segment per block.
func (b *Backend) rollHelps() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	n := 0
	for _, node := range b.live {
		if !b.suspectLocked(node.ID, now) {
			n++
		}
	}
	return n >= EnsembleSize
}

// chooseEnsemble picks EnsembleSize nodes: least loaded first, one per
// zone while unused zones remain.
func chooseEnsemble(nodes []Node, load map[string]int) []Node {
	order := slices.Clone(nodes)
	slices.SortStableFunc(order, func(a, b Node) int { return load[a.ID] - load[b.ID] })
	var chosen []Node
	zones := map[string]bool{}
	for pass := 0; pass < 2 && len(chosen) < EnsembleSize; pass++ {
		for _, n := range order {
			if len(chosen) == EnsembleSize {
				break
			}
			if slices.ContainsFunc(chosen, func(c Node) bool { return c.ID == n.ID }) {
				continue
			}
			if pass == 0 && zones[n.Zone] && n.Zone != "" {
				continue
			}
			zones[n.Zone] = true
			chosen = append(chosen, Node{ID: n.ID, Addr: n.Addr, Zone: n.Zone})
		}
	}
	return chosen
}

// replicas returns the clients of the segment's ensemble, in order.
func (b *Backend) replicas(ref segment.Ref) (placement, []quorumpb.LogStoreClient, error) {
	p, err := parsePlacement(ref)
	if err != nil {
		return placement{}, nil, err
	}
	cs := make([]quorumpb.LogStoreClient, len(p.Nodes))
	for i, n := range p.Nodes {
		if cs[i], err = b.cfg.Transport.Replica(n.Addr); err != nil {
			return placement{}, nil, err
		}
	}
	return p, cs, nil
}

// pbSegment names the segment in requests; a segment in shared objects
// carries its writer's token, under which the uploader commits.
func pbSegment(ref segment.Ref, epoch int64) *quorumpb.Segment {
	seg := &quorumpb.Segment{LogId: ref.LogID, SegmentId: ref.SegmentID, Epoch: epoch}
	if shared.IsShared(ref.Placement) {
		seg.SharedOwner = ref.Owner
	}
	return seg
}

// CreateSink implements segment.Backend.
func (b *Backend) CreateSink(ctx context.Context, ref segment.Ref, epoch int64) (segment.Sink, error) {
	p, cs, err := b.replicas(ref)
	if err != nil {
		return nil, err
	}
	var obj segment.Sink // writes the seal record of a per-log segment
	if !shared.IsShared(ref.Placement) {
		if obj, err = b.ObjectBackend.CreateSink(ctx, ref, epoch); err != nil {
			return nil, err
		}
	}
	return &sink{b: b, ref: ref, epoch: epoch, p: p, replicas: cs, obj: obj, lac: newLACTracker(), uploaded: -1}, nil
}

// sink sends a segment's blocks to its ensemble.
type sink struct {
	b        *Backend
	ref      segment.Ref
	epoch    int64
	p        placement
	replicas []quorumpb.LogStoreClient
	obj      segment.Sink
	lac      *lacTracker

	mu       sync.Mutex
	uploaded int64
	// degraded is set once a replica failed a block: the writer then rolls
	// to a segment on a fresh ensemble (segment.Degrader).
	degraded bool
	// stragglers are the calls still running to the replica that answered
	// last; Close waits for them.
	stragglers sync.WaitGroup
}

// WriteBlock implements segment.Sink: it returns once AckQuorum replicas
// hold the block. A block that cannot reach a quorum returns a transient
// error (the writer retries it) unless the replicas say the segment is
// fenced.
func (s *sink) WriteBlock(ctx context.Context, blockNo int64, block []byte) error {
	s.mu.Lock()
	uploaded := s.uploaded
	s.mu.Unlock()
	// The writer reuses block once WriteBlock returns, and the call to the
	// slowest replica may outlive it.
	block = slices.Clone(block)
	type result struct {
		i   int
		err error
	}
	results := make(chan result, len(s.replicas))
	for i, r := range s.replicas {
		req := &quorumpb.AddBlockRequest{Segment: pbSegment(s.ref, s.epoch), BlockNo: blockNo, Block: block,
			Lac: s.lac.get(), Uploaded: uploaded, Uploader: i == 0, CreatedRevision: s.p.Revision}
		s.stragglers.Add(1)
		go func() {
			defer s.stragglers.Done()
			// The call outlives WriteBlock when the quorum answered
			// first: the third replica should still get the block.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.b.cfg.CallTimeout)
			defer cancel()
			resp, err := r.AddBlock(cctx, req)
			// A replica over its byte budget frees memory as uploads go
			// on and it hears of them: send it the block again soon, with
			// the newest watermark, within the call timeout, rather than
			// count it as missing the block (which rolls the segment, and
			// the next ensemble is as full). The watermark comes from the
			// uploader, asked for it: no other answer may bring it while
			// the writer waits for this block.
			for wait := budgetRetryMin; status.Code(err) == codes.ResourceExhausted; wait = min(2*wait, budgetRetryMax) {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-cctx.Done():
					t.Stop()
				}
				if cctx.Err() != nil {
					break
				}
				if !req.Uploader {
					if st, serr := s.replicas[0].Status(cctx, &quorumpb.StatusRequest{Segment: req.Segment}); serr == nil {
						s.mu.Lock()
						s.uploaded = max(s.uploaded, st.GetUploaded())
						s.mu.Unlock()
					}
				}
				s.mu.Lock()
				again := &quorumpb.AddBlockRequest{Segment: req.Segment, BlockNo: blockNo, Block: block, Lac: s.lac.get(),
					Uploaded: s.uploaded, Uploader: req.Uploader, CreatedRevision: req.CreatedRevision}
				s.mu.Unlock()
				resp, err = r.AddBlock(cctx, again)
			}
			s.mu.Lock()
			if err == nil && resp.GetUploaded() >= 0 {
				s.uploaded = max(s.uploaded, resp.GetUploaded())
			}
			if err != nil {
				s.degraded = true
			}
			s.mu.Unlock()
			s.b.heard(s.p.Nodes[i].ID, err)
			results <- result{i, err}
		}()
	}
	var acks, fenced int
	var errs error
	for range s.replicas {
		var r result
		select {
		case r = <-results:
		case <-ctx.Done():
			return errors.Wrapf(ctx.Err(), "block %d of segment %d: waiting for a quorum", blockNo, s.ref.SegmentID)
		}
		switch {
		case r.err == nil:
			acks++
			if acks == AckQuorum {
				s.lac.acked(blockNo)
				return nil
			}
		case isFenced(r.err):
			fenced++
			errs = errors.CombineErrors(errs, r.err)
		case status.Code(r.err) == codes.InvalidArgument:
			return errors.Wrapf(r.err, "block %d of segment %d refused by %s", blockNo, s.ref.SegmentID, s.p.Nodes[r.i].ID)
		default:
			errs = errors.CombineErrors(errs, errors.Wrapf(r.err, "replica %s", s.p.Nodes[r.i].ID))
		}
		if fenced > len(s.replicas)-AckQuorum {
			// No quorum can form any more: a newer writer fenced the
			// segment. The block may be on a replica, so recovery may
			// keep it.
			return walerr.Mark(errors.Wrapf(walerr.ErrFenced, "segment %d of log %d: replicas fenced it: %v",
				s.ref.SegmentID, s.ref.LogID, errs), walerr.ErrUnknownOutcome)
		}
	}
	return errors.Wrapf(errs, "block %d of segment %d of log %d: %d of %d replicas hold it, %d needed",
		blockNo, s.ref.SegmentID, s.ref.LogID, acks, len(s.replicas), AckQuorum)
}

// A block a replica refused for its byte budget is sent again after
// budgetRetryMin, doubling up to budgetRetryMax, within the call timeout.
const (
	budgetRetryMin = 2 * time.Millisecond
	budgetRetryMax = 100 * time.Millisecond
)

func isFenced(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.FailedPrecondition
}

// Degraded implements segment.Degrader: a replica failed a block of the
// segment, so the segment now depends on fewer than 3 replicas, and a new
// placement can do better (Backend.rollHelps). Otherwise the writer goes
// on in the segment with the replicas left, as BookKeeper delays an
// ensemble change it cannot make.
func (s *sink) Degraded() bool {
	s.mu.Lock()
	d := s.degraded
	s.mu.Unlock()
	return d && s.b.rollHelps()
}

// WriteSeal implements segment.Sink: it makes every block durable in
// object storage (the uploader's work, or a copy from the other replicas
// when the uploader does not finish), then writes the seal record there,
// and releases the replicas. The uploads may lag the acknowledgements by
// far more than one call or retry timeout, so it tries again, with
// backoff, for as long as ctx lives and blocks keep reaching object
// storage; it gives up after Config.SealStall without progress, and at
// once when the segment is fenced (segment.PatientSealer).
func (s *sink) WriteSeal(ctx context.Context, info segment.SealInfo, record []byte) error {
	backoff := s.b.cfg.SealInitialBackoff
	best, since := int64(-1), time.Now()
	for {
		stored, err := s.b.uploadThrough(ctx, s.ref, s.epoch, s.replicas, info.Blocks)
		if err == nil {
			err = s.writeSealRecord(ctx, info, record)
			if err == nil {
				s.b.release(ctx, s.ref, s.epoch, s.replicas)
				return nil
			}
		}
		if ctx.Err() != nil || errors.Is(err, walerr.ErrFenced) || isFenced(err) {
			return err
		}
		if stored > best {
			best, since = stored, time.Now()
		} else if time.Since(since) >= s.b.cfg.SealStall {
			return errors.Wrapf(err, "seal segment %d of log %d: %d of %d blocks in object storage, none more for %s",
				s.ref.SegmentID, s.ref.LogID, max(best, 0), info.Blocks, s.b.cfg.SealStall)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(2*backoff, s.b.cfg.SealMaxBackoff)
	}
}

// SealsPatiently implements segment.PatientSealer.
func (s *sink) SealsPatiently() bool { return true }

// Close implements segment.Sink.
func (s *sink) Close() error {
	s.stragglers.Wait()
	if s.obj == nil {
		return nil
	}
	return s.obj.Close()
}

// uploadThrough makes blocks 0..blocks-1 durable in object storage: it asks
// the uploader to flush them, then copies whatever is still missing from
// any replica that holds it (upload takeover). Uploads are create-only
// with deterministic bytes, so racing uploaders store one copy. stored is
// how many leading blocks are known to be in object storage (-1: not
// known), also when it fails: the seal's measure of progress.
func (b *Backend) uploadThrough(ctx context.Context, ref segment.Ref, epoch int64, cs []quorumpb.LogStoreClient, blocks int64) (stored int64, err error) {
	if blocks == 0 {
		return 0, nil
	}
	fctx, cancel := context.WithTimeout(ctx, b.cfg.CallTimeout)
	_, _ = cs[0].Flush(fctx, &quorumpb.FlushRequest{Segment: pbSegment(ref, epoch), ThroughBlock: blocks - 1})
	cancel()
	scan, err := b.Backend.Scan(ctx, ref)
	if err != nil {
		return -1, err
	}
	if shared.IsShared(ref.Placement) {
		return b.copyShared(ctx, ref, scan.Blocks, blocks, func(ctx context.Context, blk int64) ([]byte, error) {
			return b.readFromAny(ctx, ref, epoch, cs, blk)
		})
	}
	return copyBlocks(ctx, scan.Blocks, blocks, func(ctx context.Context, blk int64) error {
		data, err := b.readFromAny(ctx, ref, epoch, cs, blk)
		if err != nil {
			if b.uploaded(ctx, ref, blk) {
				return nil // the uploader got there first, and dropped its copy
			}
			return errors.Wrapf(err, "upload block %d of segment %d of log %d", blk, ref.SegmentID, ref.LogID)
		}
		return segment.UploadBlock(ctx, b.ObjectBackend.Store(), b.ObjectBackend.Root(), ref, blk, data)
	})
}

// copyParallel is how many blocks a seal or a recovery copies to object
// storage at once. The copies are create-only with deterministic bytes, so
// their order does not matter (blocks that land above one that failed are
// never read: a recovery fences the first gap); one at a time, a recovery
// behind an uploader that lags dozens of blocks cost dozens of PUT
// latencies, longer than a writer waits on a loaded machine (the chaos
// suite's quorum long runs).
const copyParallel = 8

// copyBlocks runs do for blocks from..to-1, copyParallel at a time, and
// returns the lowest block that failed, with its error, or to and nil.
func copyBlocks(ctx context.Context, from, to int64, do func(ctx context.Context, blk int64) error) (int64, error) {
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		first    = to
		firstErr error
	)
	fail := func(blk int64, err error) {
		mu.Lock()
		defer mu.Unlock()
		if blk < first {
			first, firstErr = blk, err
		}
	}
	sem := make(chan struct{}, copyParallel)
	for blk := from; blk < to; blk++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			fail(blk, ctx.Err())
		}
		if ctx.Err() != nil {
			fail(blk, ctx.Err())
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := do(ctx, blk); err != nil {
				fail(blk, err)
			}
		}()
	}
	wg.Wait()
	return first, firstErr
}

// uploaded reports whether block blk of the segment is in object storage.
// A replica drops a block once it is uploaded, so a block that a replica
// listed may be gone from it by the time it is read: then it is here.
func (b *Backend) uploaded(ctx context.Context, ref segment.Ref, blk int64) bool {
	if shared.IsShared(ref.Placement) {
		ok, err := b.Committed(ctx, ref, blk)
		return ok && err == nil
	}
	_, err := b.ObjectBackend.Store().Stat(ctx, segment.BlockKey(b.ObjectBackend.Root(), ref.LogID, ref.SegmentID, blk))
	return err == nil
}

// readFromAny reads one block from the first replica that has it.
func (b *Backend) readFromAny(ctx context.Context, ref segment.Ref, epoch int64, cs []quorumpb.LogStoreClient, blk int64) ([]byte, error) {
	var errs error
	for i, c := range cs {
		if data, err := b.readBlock(ctx, c, ref, epoch, blk); err == nil {
			return data, nil
		} else {
			errs = errors.CombineErrors(errs, errors.Wrapf(err, "replica %d", i))
		}
	}
	return nil, errs
}

func (b *Backend) readBlock(ctx context.Context, c quorumpb.LogStoreClient, ref segment.Ref, epoch, blk int64,
	opts ...grpc.CallOption) ([]byte, error) {
	cctx, cancel := context.WithTimeout(ctx, b.cfg.CallTimeout)
	defer cancel()
	resp, err := c.ReadBlock(cctx, &quorumpb.ReadBlockRequest{Segment: pbSegment(ref, epoch), BlockNo: blk}, opts...)
	if err != nil {
		return nil, err
	}
	h, err := segment.DecodeBlockHeader(resp.GetBlock())
	if err != nil || h.LogID != ref.LogID || h.SegmentID != ref.SegmentID || h.BlockNo != blk {
		return nil, errors.Wrapf(walerr.ErrCorrupt, "block %d of segment %d of log %d from a replica does not validate (%v)",
			blk, ref.SegmentID, ref.LogID, err)
	}
	return resp.GetBlock(), nil
}

// release tells every replica to drop the segment, best effort: a
// replica that misses it drops the segment when it is told later or
// restarts.
func (b *Backend) release(ctx context.Context, ref segment.Ref, epoch int64, cs []quorumpb.LogStoreClient) {
	for _, c := range cs {
		cctx, cancel := context.WithTimeout(ctx, b.cfg.CallTimeout)
		_, _ = c.Release(cctx, &quorumpb.ReleaseRequest{Segment: pbSegment(ref, epoch)})
		cancel()
	}
}

// ask calls every replica in parallel, each bounded by the call timeout,
// and returns the answers in ensemble order (nil where it failed).
func ask[T any](ctx context.Context, b *Backend, cs []quorumpb.LogStoreClient,
	call func(context.Context, quorumpb.LogStoreClient) (T, error)) ([]T, []error) {
	out := make([]T, len(cs))
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, b.cfg.CallTimeout)
			defer cancel()
			out[i], errs[i] = call(cctx, c)
		}()
	}
	wg.Wait()
	return out, errs
}

// Recover implements segment.Backend: fence the ensemble, decide where
// the segment ends (DecideRecovery), upload the blocks object storage
// lacks, then let the object backend fence its next slot and write the
// seal record.
func (b *Backend) Recover(ctx context.Context, ref segment.Ref, epoch int64) (segment.SealInfo, error) {
	p, cs, err := b.replicas(ref)
	if err != nil {
		return segment.SealInfo{}, err
	}
	fences, errs := ask(ctx, b, cs, func(ctx context.Context, c quorumpb.LogStoreClient) (*quorumpb.FenceResponse, error) {
		// Wait for a connection within the call timeout: a replica that
		// is reconnecting must still get the chance to answer.
		return c.Fence(ctx, &quorumpb.FenceRequest{Segment: pbSegment(ref, epoch), CreatedRevision: p.Revision},
			grpc.WaitForReady(true))
	})
	answers := make([]Answer, len(cs))
	for i, f := range fences {
		switch {
		case errs[i] != nil:
			answers[i] = Answer{Kind: Unreachable}
		case !f.GetKnown():
			answers[i] = Answer{Kind: Unknown, Blocks: f.GetBlocks(), Uploaded: f.GetUploaded()}
		default:
			answers[i] = Answer{Kind: Known, Blocks: f.GetBlocks(), Uploaded: f.GetUploaded()}
		}
	}
	stored, err := b.Backend.Scan(ctx, ref)
	if err != nil {
		return segment.SealInfo{}, err
	}
	d, err := DecideRecovery(answers, stored.Blocks)
	if err != nil {
		return segment.SealInfo{}, errors.Wrapf(err, "recover segment %d of log %d (replica errors: %v)",
			ref.SegmentID, ref.LogID, errors.Join(errs...))
	}
	if shared.IsShared(ref.Placement) {
		return b.recoverShared(ctx, ref, epoch, p, cs, stored.Blocks, d)
	}
	if _, err := copyBlocks(ctx, stored.Blocks, d.End, func(ctx context.Context, blk int64) error {
		data, err := b.readBlock(ctx, cs[d.Sources[blk]], ref, epoch, blk, grpc.WaitForReady(true))
		if err != nil && b.uploaded(ctx, ref, blk) {
			return nil // uploaded and dropped between the fence and the read
		}
		if err != nil {
			return errors.Wrapf(err, "recover segment %d of log %d: read block %d from %s",
				ref.SegmentID, ref.LogID, blk, p.Nodes[d.Sources[blk]].ID)
		}
		if err := segment.UploadBlock(ctx, b.ObjectBackend.Store(), b.ObjectBackend.Root(), ref, blk, data); err != nil {
			return errors.Wrapf(err, "recover segment %d of log %d: upload block %d", ref.SegmentID, ref.LogID, blk)
		}
		return nil
	}); err != nil {
		return segment.SealInfo{}, err
	}
	info, err := b.ObjectBackend.Recover(ctx, ref, epoch)
	if err != nil {
		return segment.SealInfo{}, err
	}
	b.release(ctx, ref, epoch, cs)
	return info, nil
}

// visible returns how many blocks of an open segment readers may see now,
// and what object storage holds.
func (b *Backend) visible(ctx context.Context, ref segment.Ref) (int64, segment.SealInfo, []quorumpb.LogStoreClient, error) {
	if ref.Placement == "" {
		stored, err := b.ObjectBackend.Scan(ctx, ref)
		return stored.Blocks, stored, nil, err
	}
	sv, err := b.survey(ctx, ref)
	if err != nil {
		return 0, segment.SealInfo{}, nil, err
	}
	return VisibleWithLAC(sv.stored.Blocks, HeldBy(sv.answers), sv.lac), sv.stored, sv.cs, nil
}

// survey is what an open segment's replicas and object storage hold.
type survey struct {
	answers []Answer
	lac     int64 // the highest LAC an answer reported (-1: none)
	stored  segment.SealInfo
	cs      []quorumpb.LogStoreClient
}

// survey asks the segment's replicas what they hold, then lists object
// storage. Replicas first: a block they dropped in between, once
// uploaded, is then in the listing. (The other order lost such a block
// from both: a reader from Latest opened before entries acknowledged
// earlier, found by the chaos suite.) Answers are Known when the replica
// vouches for the segment, as in recovery.
func (b *Backend) survey(ctx context.Context, ref segment.Ref) (survey, error) {
	p, cs, err := b.replicas(ref)
	if err != nil {
		return survey{}, err
	}
	sts, errs := ask(ctx, b, cs, func(ctx context.Context, c quorumpb.LogStoreClient) (*quorumpb.FenceResponse, error) {
		return c.Status(ctx, &quorumpb.StatusRequest{Segment: pbSegment(ref, 0), CreatedRevision: p.Revision})
	})
	sv := survey{answers: make([]Answer, len(cs)), lac: -1, cs: cs}
	for i, st := range sts {
		switch {
		case errs[i] != nil:
			sv.answers[i] = Answer{Kind: Unreachable}
			continue
		case st.GetKnown():
			sv.answers[i] = Answer{Kind: Known, Blocks: st.GetBlocks(), Uploaded: st.GetUploaded()}
		default:
			sv.answers[i] = Answer{Kind: Unknown, Blocks: st.GetBlocks(), Uploaded: st.GetUploaded()}
		}
		sv.lac = max(sv.lac, st.GetLac())
	}
	if sv.stored, err = b.Backend.Scan(ctx, ref); err != nil {
		return survey{}, err
	}
	return sv, nil
}

// Scan implements segment.Backend: what object storage holds, extended by
// the blocks a quorum of replicas holds.
func (b *Backend) Scan(ctx context.Context, ref segment.Ref) (segment.SealInfo, error) {
	n, stored, cs, err := b.visible(ctx, ref)
	if err != nil || n == stored.Blocks {
		return stored, err
	}
	return b.through(ctx, ref, stored, cs, nil, n)
}

// ScanLatest implements segment.LatestScanner: it ends past every block
// the writer may have acknowledged (LatestEnd), also when a replica is
// silent; Scan ends at what readers may read. With too few replicas
// vouching for the segment it returns an error wrapping ErrNoQuorum.
func (b *Backend) ScanLatest(ctx context.Context, ref segment.Ref) (segment.SealInfo, error) {
	if ref.Placement == "" {
		return b.ObjectBackend.Scan(ctx, ref)
	}
	sv, err := b.survey(ctx, ref)
	if err != nil {
		return segment.SealInfo{}, err
	}
	n, err := LatestEnd(sv.stored.Blocks, sv.answers, sv.lac)
	if err != nil {
		return segment.SealInfo{}, errors.Wrapf(err, "place Latest in segment %d of log %d", ref.SegmentID, ref.LogID)
	}
	if n == sv.stored.Blocks {
		return sv.stored, nil
	}
	return b.through(ctx, ref, sv.stored, sv.cs, sv.answers, n)
}

// through returns the segment's SealInfo for blocks 0..n-1, n above what
// object storage holds: it reads block n-1's header from a replica,
// first from those whose answer lists it.
func (b *Backend) through(ctx context.Context, ref segment.Ref, stored segment.SealInfo, cs []quorumpb.LogStoreClient,
	answers []Answer, n int64) (segment.SealInfo, error) {
	order := make([]quorumpb.LogStoreClient, 0, len(cs))
	for i, a := range answers {
		if slices.Contains(a.Blocks, n-1) {
			order = append(order, cs[i])
		}
	}
	for _, c := range cs {
		if !slices.Contains(order, c) {
			order = append(order, c)
		}
	}
	data, err := b.readFromAny(ctx, ref, 0, order, n-1)
	if err != nil {
		// Uploaded and dropped since the replicas answered.
		if d, gerr := b.storedBlock(ctx, ref, n-1); gerr == nil {
			data, err = d, nil
		}
	}
	if err != nil {
		return segment.SealInfo{}, errors.Wrapf(err, "scan segment %d of log %d", ref.SegmentID, ref.LogID)
	}
	h, err := segment.DecodeBlockHeader(data)
	if err != nil {
		return segment.SealInfo{}, err
	}
	return segment.SealInfo{LastEntry: h.FirstEntry + int64(h.Count) - 1, Blocks: n, Bytes: stored.Bytes}, nil
}

// OpenCursor implements segment.Backend: blocks come from object storage,
// and the not-yet-uploaded tail from the replicas once a quorum holds it.
func (b *Backend) OpenCursor(ref segment.Ref) segment.Cursor {
	return &cursor{b: b, ref: ref, inner: b.Backend.OpenCursor(ref)}
}

type cursor struct {
	b     *Backend
	ref   segment.Ref
	inner segment.Cursor
	next  int64
	limit bool
}

func (c *cursor) Next(ctx context.Context) (segment.BlockHeader, [][]byte, error) {
	h, entries, err := c.inner.Next(ctx)
	if err == nil {
		c.next = h.BlockNo + 1
		return h, entries, nil
	}
	if !errors.Is(err, segment.ErrNoBlockYet) || c.limit || c.ref.Placement == "" {
		return h, entries, err
	}
	n, _, cs, verr := c.b.visible(ctx, c.ref)
	if verr != nil || n <= c.next {
		return h, entries, err // not on a quorum yet: ErrNoBlockYet
	}
	data, rerr := c.b.readFromAny(ctx, c.ref, 0, cs, c.next)
	if rerr != nil {
		return h, entries, err
	}
	h, entries, err = segment.DecodeBlock(data)
	if err != nil {
		return segment.BlockHeader{}, nil, err
	}
	c.next++
	c.inner.Skip(c.next)
	return h, entries, nil
}

func (c *cursor) SetLimit(blocks int64) { c.limit = true; c.inner.SetLimit(blocks) }
func (c *cursor) Skip(blockNo int64)    { c.next = blockNo; c.inner.Skip(blockNo) }
func (c *cursor) Close() error          { return c.inner.Close() }

// UseGeneration forwards to the object cursor (sealed segments are read
// from object storage only).
func (c *cursor) UseGeneration(gen int64) {
	if g, ok := c.inner.(segment.GenerationCursor); ok {
		g.UseGeneration(gen)
	}
}

// String names the backend's ensemble for a segment, for messages.
func (p placement) String() string {
	ids := make([]string, len(p.Nodes))
	for i, n := range p.Nodes {
		ids[i] = n.ID
	}
	return fmt.Sprint(ids)
}
