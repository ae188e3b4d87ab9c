// Package logstore is the LogStore server: one QuorumBuffer replica (see
// docs/quorum.md). It holds the not-yet-uploaded blocks of open segments
// in memory under a byte budget, refuses blocks once a segment is fenced,
// answers recovery's fences, and uploads blocks to object storage with
// the same keys, bytes and create-only puts as the object backend.
//
// What the replica keeps per segment: the writer's epoch, the blocks it
// holds, whether the segment is fenced, the highest last-add-confirmed
// (LAC) it heard, and the upload watermark (every block up to it is in
// object storage: uploaded here, or reported by the writer). It drops the
// blocks at or below min(watermark, LAC).
//
// Vouching. A replica that restarted lost what it held, unless it keeps a
// journal (Config.Journal, journal.go): then it lost nothing it answered,
// and its memory dates from the journal's first use. It may answer for
// a segment (FenceResponse.known) only when it registered before the
// segment was created (Config.RegisteredRevision < created_revision):
// then it was up for the segment's whole life and what it lists is all it
// was sent. Otherwise it answers known=false, listing what it holds all
// the same (real copies, but not proof that nothing else was sent). For
// the same reason it refuses blocks of such a segment when it holds
// nothing of it (DATA_LOSS, ReasonSegmentLost): it may have lost the
// segment's fence, and taking blocks could let a fenced writer reach a
// quorum with the one replica the fence missed.
//
// Released segments stay fenced (a tombstone without blocks; the newest
// Config.MaxReleased are kept), so that a writer that lost its segment to
// recovery cannot find a quorum for it on replicas that dropped it.
package logstore

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/quorum/logstore/journal"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/shared"
)

// Defaults of Config fields left zero.
const (
	DefaultUploadParallel   = 8
	DefaultUploadBackoffMin = 50 * time.Millisecond
	DefaultUploadBackoffMax = 5 * time.Second
	DefaultUploadTimeout    = 30 * time.Second
	DefaultMaxReleased      = 1 << 16
	DefaultStopTimeout      = 5 * time.Second
)

// messageOverhead is room for a request's fields around its block.
const messageOverhead = 64 << 10

// Config configures a Server.
type Config struct {
	// NodeID names the LogStore (its id in the registry); it appears in
	// logs and in the details of refusals.
	NodeID string
	// Addr is the address clients dial, as registered. Informational
	// (logs): Serve serves whatever listener it is given.
	Addr string
	// Zone is the node's failure domain, as registered. Informational.
	Zone string
	// BudgetBytes bounds the bytes of blocks held in memory, across all
	// segments; an add beyond it is refused with RESOURCE_EXHAUSTED.
	// Required (> 0).
	BudgetBytes int64
	// BudgetBlocks, when above 0, bounds the blocks held in memory, across
	// all segments, the same way. Each held block is a PUT that a seal or a
	// recovery must make when the uploader lags; small blocks fill a byte
	// budget only after thousands of them.
	BudgetBlocks int64
	// Store is the object store blocks are uploaded to, under Root: the
	// root of the object backend the clients use ("" as
	// segment.NewObjectBackend(store, "", ...) in the client), so that a
	// block has the same key whoever uploads it. Store is required.
	Store objstore.Store
	Root  string
	// RegisteredRevision is the etcd revision from which the replica
	// remembers everything it was sent: the one at which this process
	// registered (quorum.Register), before it served, or with a Journal the
	// one the journal recorded at its first use. 0 means not registered
	// (tests, fixed node lists): the replica then vouches only for segments
	// whose requests carry no created revision either.
	RegisteredRevision int64
	// UploadParallel bounds the puts in flight across segments
	// (DefaultUploadParallel).
	UploadParallel int
	// UploadBackoffMin and UploadBackoffMax bound the wait between
	// attempts of a failed upload, doubling (DefaultUploadBackoffMin/Max).
	// Failed uploads are retried until they succeed, the segment is
	// released or the server closes.
	UploadBackoffMin, UploadBackoffMax time.Duration
	// UploadTimeout bounds one upload attempt (DefaultUploadTimeout).
	UploadTimeout time.Duration
	// MaxReleased is how many released segments are remembered as fenced
	// (DefaultMaxReleased; a few dozen bytes each).
	MaxReleased int
	// StopTimeout bounds the graceful stop in Close: calls still running
	// after it are cut off (DefaultStopTimeout).
	StopTimeout time.Duration
	// Shared, when set, uploads the blocks of segments whose writer placed
	// them in shared objects (requests carry Segment.shared_owner): it
	// packs them, with those of every other such segment here, into shared
	// objects committed in etcd (docs/shared-objects.md). Nil: such
	// segments are not uploaded here (a seal or a recovery copies them).
	Shared *shared.Uploader
	// Journal, when set, makes the replica durable: it syncs each block it
	// takes and each fence it answers to the journal before it answers,
	// and New replays it (see journal.go). Pair it with the
	// RegisteredRevision the journal recorded at its first use
	// (journal.Dir.Revision): the replica remembers everything from then.
	// Nil: the replica holds blocks in memory only.
	Journal *journal.Dir
	// TLS, when set, makes the server serve TLS (set ClientCAs and
	// ClientAuth in it to require client certificates).
	TLS *tls.Config
	// Logger receives the server's logs (nil: none).
	Logger *zap.Logger
	// Registerer receives the server's metrics (nil: not registered).
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() error {
	if c.BudgetBytes <= 0 {
		return errors.Newf("logstore: budget %d: want a byte budget above 0", c.BudgetBytes)
	}
	if c.Store == nil {
		return errors.New("logstore: no object store")
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.UploadBackoffMin, DefaultUploadBackoffMin)
	def(&c.UploadBackoffMax, DefaultUploadBackoffMax)
	def(&c.UploadTimeout, DefaultUploadTimeout)
	def(&c.StopTimeout, DefaultStopTimeout)
	c.UploadBackoffMax = max(c.UploadBackoffMax, c.UploadBackoffMin)
	if c.UploadParallel <= 0 {
		c.UploadParallel = DefaultUploadParallel
	}
	if c.MaxReleased <= 0 {
		c.MaxReleased = DefaultMaxReleased
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return nil
}

// Server is a LogStore: it implements quorumpb.LogStoreServer and serves
// it over gRPC with the standard health service and reflection. Create
// it with New, serve with Serve, stop with Close. Safe for concurrent
// use.
type Server struct {
	quorumpb.UnimplementedLogStoreServer

	cfg    Config
	log    *zap.Logger
	m      *serverMetrics
	grpc   *grpc.Server
	health *health.Server
	bad    sync.Map // requests that did not parse (lenientCodec)

	// ctx ends at Close; every upload goroutine runs under it and is
	// counted in uploads.
	ctx     context.Context
	cancel  context.CancelFunc
	uploads sync.WaitGroup
	slots   chan struct{} // one per put in flight

	mu       sync.Mutex
	segs     map[segKey]*segState
	released []segKey // tombstones, oldest first
	held     int64    // bytes of blocks held
	nblocks  int64    // blocks held
	closed   bool
	watches  map[segKey]*watchPoint // segments with watchers (watch.go)

	closeOnce sync.Once
}

var _ quorumpb.LogStoreServer = (*Server)(nil)

// New returns a server that is not serving yet.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	m.budget.Set(float64(cfg.BudgetBytes))
	s := &Server{
		cfg:   cfg,
		log:   cfg.Logger.With(zap.String("node", cfg.NodeID)),
		m:     m,
		slots: make(chan struct{}, cfg.UploadParallel),
		segs:  map[segKey]*segState{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	maxMsg := int(min(cfg.BudgetBytes, segment.BlockHeaderSize+segment.MaxBlockRawLen+segment.BlockTrailerSize)) + messageOverhead
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxMsg),
		grpc.ForceServerCodecV2(lenientCodec{CodecV2: quorumpb.Codec{}, bad: &s.bad}),
	}
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLS)))
	}
	s.grpc = grpc.NewServer(opts...)
	quorumpb.RegisterLogStoreServer(s.grpc, s)
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	if cfg.Journal != nil {
		segs, err := cfg.Journal.Replay()
		if err != nil {
			s.cancel()
			return nil, errors.Wrapf(err, "logstore: replay the journal in %s", cfg.Journal.Path())
		}
		s.restore(segs)
	}
	return s, nil
}

// lockSeg returns the state of k with its jmu held (the caller unlocks
// it), creating the state when create is set and admit, run under s.mu
// when k has no state yet, does not refuse. It returns nil when k has no
// state and create is not set.
func (s *Server) lockSeg(k segKey, create bool, admit func() error) (*segState, error) {
	for {
		s.mu.Lock()
		st := s.segLocked(k, false)
		if st == nil && create {
			if admit != nil {
				if err := admit(); err != nil {
					s.mu.Unlock()
					return nil, err
				}
			}
			st = s.segLocked(k, true)
		}
		s.mu.Unlock()
		if st == nil {
			return nil, nil
		}
		st.jmu.Lock()
		s.mu.Lock()
		current := s.segs[k] == st
		s.mu.Unlock()
		if current {
			return st, nil
		}
		st.jmu.Unlock() // forgotten meanwhile (an old tombstone): again
	}
}

// Serve serves on ln until Close, and returns nil after Close. The health
// service reports SERVING (for "" and for the LogStore service) from now
// until Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		_ = ln.Close()
		return errors.New("logstore: server closed")
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(quorumpb.LogStore_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	s.log.Info("logstore serving", zap.String("listen", ln.Addr().String()), zap.String("addr", s.cfg.Addr),
		zap.String("zone", s.cfg.Zone), zap.Int64("budgetBytes", s.cfg.BudgetBytes),
		zap.Int64("registeredRevision", s.cfg.RegisteredRevision))
	if err := s.grpc.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return errors.Wrap(err, "logstore: serve")
	}
	return nil
}

// Close stops the server: the health service reports NOT_SERVING, new
// calls are refused, waiting Flush calls return UNAVAILABLE, uploads stop
// (what is not uploaded stays with the other replicas and the writer),
// and calls in flight get Config.StopTimeout to finish before they are
// cut off. Every goroutine the server started has ended when Close
// returns. Idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.health.Shutdown()
		s.cancel()
		s.mu.Lock()
		s.closed = true
		for _, st := range s.segs {
			st.notifyLocked()
		}
		s.mu.Unlock()
		done := make(chan struct{})
		go func() {
			s.grpc.GracefulStop()
			close(done)
		}()
		t := time.NewTimer(s.cfg.StopTimeout)
		select {
		case <-done:
		case <-t.C:
			s.log.Warn("logstore: calls still running at the end of the graceful stop: cutting them off",
				zap.Duration("stopTimeout", s.cfg.StopTimeout))
			s.grpc.Stop()
			<-done
		}
		t.Stop()
		s.uploads.Wait()
		s.closeJournal()
		s.log.Info("logstore stopped")
	})
	return nil
}

// Stats is what a server holds.
type Stats struct {
	// Segments the server keeps state of, released ones included.
	Segments int
	// Blocks and Bytes held in memory.
	Blocks int64
	Bytes  int64
}

// Stats returns what the server holds now.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Segments: len(s.segs), Blocks: s.nblocks, Bytes: s.held}
}

// segKey names a segment.
type segKey struct{ log, seg int64 }

func (k segKey) ref() segment.Ref { return segment.Ref{LogID: k.log, SegmentID: k.seg} }

// sharedRef names the segment as a shared segment, for the shared object
// stream and its index.
func (k segKey) sharedRef() segment.Ref {
	return segment.Ref{LogID: k.log, SegmentID: k.seg, Placement: shared.Placement}
}

// segState is what the replica keeps of one segment. Guarded by Server.mu.
type segState struct {
	key    segKey
	epoch  int64 // the writer's epoch, -1 until the first block
	blocks map[int64][]byte
	bytes  int64
	// dropped: every block at or below it was dropped (or never held).
	dropped  int64
	fenced   bool
	released bool
	lac      int64 // highest LAC heard, -1: none
	uploaded int64 // upload watermark, -1: none
	uploader bool
	// owner is the writer's token when the segment lives in shared
	// objects (Segment.shared_owner), "" for one object per block.
	owner   string
	flushTo int64 // highest through_block a Flush asked for, -1: none
	// uploading is set while an upload goroutine runs for the segment;
	// uploadKick wakes it to start more puts.
	uploading  bool
	uploadKick chan struct{}
	// putErr is why uploading stopped for good: the next slot in object
	// storage holds other data (a fence).
	putErr error
	// changed is closed (and replaced) when uploaded, uploading or putErr
	// change, or the server closes: Flush waits on it.
	changed chan struct{}
	// ctx ends when the segment is released or the server closes.
	ctx    context.Context
	cancel context.CancelFunc
	// watch wakes the segment's watchers (nil: none).
	watch *watchPoint

	// jmu serializes the calls that change the segment (AddBlock, Fence,
	// Release), journal writes included: it is taken before Server.mu
	// (lockSeg) and held across the write. The j* fields are guarded by
	// it: the journal file (nil until the first write), and what it
	// records.
	jmu       sync.Mutex
	jfile     *journal.File
	jfenced   bool
	jreleased bool
	jdropped  int64
}

// learnOwner records the segment's shared owner from a request. Requires
// Server.mu.
func (st *segState) learnOwner(seg *quorumpb.Segment) {
	if o := seg.GetSharedOwner(); st.owner == "" && o != "" {
		st.owner = o
	}
}

func (st *segState) notifyLocked() {
	close(st.changed)
	st.changed = make(chan struct{})
	st.watchChangedLocked()
}

// segLocked returns the state of k, creating it when create is set (nil
// otherwise). Requires s.mu.
func (s *Server) segLocked(k segKey, create bool) *segState {
	st := s.segs[k]
	if st != nil || !create {
		return st
	}
	st = &segState{key: k, epoch: -1, blocks: map[int64][]byte{}, dropped: -1, lac: -1, uploaded: -1, flushTo: -1,
		changed: make(chan struct{}), jdropped: -1, uploadKick: make(chan struct{}, 1)}
	st.ctx, st.cancel = context.WithCancel(s.ctx)
	s.segs[k] = st
	st.watch = s.watches[k]
	st.watchChangedLocked()
	s.m.segments.Set(float64(len(s.segs)))
	return st
}

// vouches reports whether the replica can answer for every block of a
// segment created at etcd revision created (0: not known): it registered
// before the segment was created, so no restart lost any of it.
func (s *Server) vouches(created int64) bool {
	reg := s.cfg.RegisteredRevision
	if reg <= 0 {
		return created <= 0
	}
	return created > 0 && reg < created
}

// hear records the LAC and watermark a writer reports, and drops what
// they make unnecessary. Requires s.mu.
func (s *Server) hearLocked(st *segState, lac, uploaded int64) {
	if lac > st.lac {
		st.lac = lac
		st.watchChangedLocked()
	}
	if uploaded > st.uploaded {
		st.uploaded = uploaded
		st.notifyLocked()
	}
	s.dropLocked(st)
}

// dropLocked drops the blocks at or below min(watermark, LAC): they are
// in object storage, and no writer will ask for them again. Requires s.mu.
func (s *Server) dropLocked(st *segState) {
	limit := min(st.uploaded, st.lac)
	if limit <= st.dropped {
		return
	}
	if limit-st.dropped <= int64(len(st.blocks)) {
		for n := st.dropped + 1; n <= limit; n++ {
			s.removeLocked(st, n)
		}
	} else {
		for n := range st.blocks {
			if n <= limit {
				s.removeLocked(st, n)
			}
		}
	}
	st.dropped = limit
}

func (s *Server) removeLocked(st *segState, n int64) {
	b, ok := st.blocks[n]
	if !ok {
		return
	}
	delete(st.blocks, n)
	st.bytes -= int64(len(b))
	s.held -= int64(len(b))
	s.nblocks--
	s.m.bytesHeld.Set(float64(s.held))
	s.m.blocksHeld.Set(float64(s.nblocks))
}

// key validates a request's segment.
func (s *Server) key(seg *quorumpb.Segment) (segKey, error) {
	if seg == nil {
		return segKey{}, s.refuse(codes.InvalidArgument, ReasonInvalid, "request names no segment")
	}
	if seg.GetLogId() < 0 || seg.GetSegmentId() < 0 || seg.GetEpoch() < 0 {
		return segKey{}, s.refuse(codes.InvalidArgument, ReasonInvalid, "negative id in segment (log %d, segment %d, epoch %d)",
			seg.GetLogId(), seg.GetSegmentId(), seg.GetEpoch())
	}
	if o := seg.GetSharedOwner(); o != "" {
		if _, err := meta.ParseWriterToken(seg.GetLogId(), o); err != nil {
			return segKey{}, s.refuse(codes.InvalidArgument, ReasonInvalid, "segment's shared owner: %v", err)
		}
	}
	return segKey{seg.GetLogId(), seg.GetSegmentId()}, nil
}

// begin checks what every call checks: the request parsed, names a
// segment, and the server is open.
func (s *Server) begin(req segmentRequest) (segKey, error) {
	if err := s.malformed(req); err != nil {
		return segKey{}, err
	}
	k, err := s.key(req.GetSegment())
	if err != nil {
		return segKey{}, err
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return segKey{}, s.refuse(codes.Unavailable, "", "logstore %s is shutting down", s.cfg.NodeID)
	}
	return k, nil
}

// validateBlock checks that data is one whole valid block (header and
// body CRCs, lengths) of segment k, written by epoch as its block blockNo.
// The entries section is covered by the body CRC and not parsed: readers
// decode it.
func validateBlock(data []byte, k segKey, epoch, blockNo int64) error {
	h, err := segment.DecodeBlockHeader(data)
	if err != nil {
		return err
	}
	switch {
	case h.LogID != k.log || h.SegmentID != k.seg:
		return errors.Newf("the block belongs to log %d segment %d, not to log %d segment %d",
			h.LogID, h.SegmentID, k.log, k.seg)
	case h.Epoch != epoch:
		return errors.Newf("the block was written by epoch %d, the request says epoch %d", h.Epoch, epoch)
	case h.BlockNo != blockNo:
		return errors.Newf("the block is block %d, the request says block %d", h.BlockNo, blockNo)
	case int64(len(data)) != segment.BlockSize(h):
		return errors.Newf("the block is %d bytes, its header says %d", len(data), segment.BlockSize(h))
	}
	blocks, n, err := segment.ValidPrefix(data, k.log, k.seg)
	if err != nil {
		return err
	}
	if len(blocks) != 1 || n != int64(len(data)) {
		return errors.Wrapf(segment.ErrCorrupt, "block %d: body CRC mismatch", blockNo)
	}
	return nil
}

// AddBlock implements quorumpb.LogStoreServer: see the proto. A repeated
// add of a block the replica holds succeeds when the bytes are the same
// (a writer's retry) and is refused when they differ; an add of a block
// at or below the upload watermark succeeds without storing anything (it
// is in object storage).
func (s *Server) AddBlock(_ context.Context, req *quorumpb.AddBlockRequest) (*quorumpb.AddBlockResponse, error) {
	k, err := s.begin(req)
	if err != nil {
		return nil, err
	}
	n, data, epoch := req.GetBlockNo(), req.GetBlock(), req.GetSegment().GetEpoch()
	if n < 0 {
		return nil, s.refuse(codes.InvalidArgument, ReasonInvalid, "negative block number %d", n)
	}
	if err := validateBlock(data, k, epoch, n); err != nil {
		return nil, s.refuse(codes.InvalidArgument, ReasonInvalid, "block %d of log %d segment %d: %v", n, k.log, k.seg, err)
	}

	st, err := s.lockSeg(k, true, func() error {
		if created := req.GetCreatedRevision(); created > 0 && !s.vouches(created) {
			return s.refuse(codes.DataLoss, ReasonSegmentLost,
				"logstore %s registered at revision %d, after log %d segment %d was created (revision %d), and holds nothing of it: "+
					"it may have lost the segment's blocks and fence in a restart, and takes no part in it",
				s.cfg.NodeID, s.cfg.RegisteredRevision, k.log, k.seg, created)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer st.jmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.fenced {
		return nil, s.refuse(codes.FailedPrecondition, ReasonFenced, "log %d segment %d is fenced on logstore %s", k.log, k.seg, s.cfg.NodeID)
	}
	if st.epoch >= 0 && st.epoch != epoch {
		return nil, s.refuse(codes.InvalidArgument, ReasonInvalid, "log %d segment %d is written by epoch %d, not %d",
			k.log, k.seg, st.epoch, epoch)
	}
	st.epoch = epoch
	st.uploader = st.uploader || req.GetUploader()
	st.learnOwner(req.GetSegment())
	s.hearLocked(st, req.GetLac(), req.GetUploaded())

	if held, ok := st.blocks[n]; ok {
		if string(held) != string(data) {
			return nil, s.refuse(codes.InvalidArgument, ReasonInvalid,
				"block %d of log %d segment %d differs from the block %d held (a writer sends each block once, with the same bytes on retry)",
				n, k.log, k.seg, n)
		}
	} else if n > st.uploaded && n > st.dropped {
		size := int64(len(data))
		// Over the budget, the replica still takes the one block without
		// which no memory can free: the block after the LAC (no later one
		// can be acknowledged before it) and, on the uploader, the next
		// block to upload (no later one can be uploaded before it).
		// Refusing those while holding later blocks would leave every
		// replica full for good. At most two blocks of a segment go over
		// the budget so.
		unblocks := n == st.lac+1 || (st.uploader && n == st.uploaded+1)
		if s.held+size > s.cfg.BudgetBytes && !unblocks {
			return nil, s.refuse(codes.ResourceExhausted, ReasonBudget,
				"logstore %s holds %d bytes of its %d byte budget: block %d (%d bytes) does not fit; retry once uploads free memory",
				s.cfg.NodeID, s.held, s.cfg.BudgetBytes, n, size)
		}
		if b := s.cfg.BudgetBlocks; b > 0 && s.nblocks >= b && !unblocks {
			return nil, s.refuse(codes.ResourceExhausted, ReasonBudget,
				"logstore %s holds %d blocks, its budget: block %d does not fit; retry once uploads free memory",
				s.cfg.NodeID, s.nblocks, n)
		}
		// Reserved while the journal is written (s.mu is released then).
		s.held += size
		s.nblocks++
		err := s.persistLocked(st, journal.Record{Kind: journal.KindBlock, N: n, Data: data})
		if err != nil || n <= st.dropped {
			// Not taken; or dropped meanwhile: object storage has it.
			s.held -= size
			s.nblocks--
			if err != nil {
				return nil, err
			}
		} else {
			st.blocks[n] = data
			st.bytes += size
			st.watchChangedLocked()
			s.m.added.Inc()
			s.m.bytesHeld.Set(float64(s.held))
			s.m.blocksHeld.Set(float64(s.nblocks))
		}
	}
	s.startUploadLocked(st)
	resp := &quorumpb.AddBlockResponse{Uploaded: -1}
	if st.uploader {
		resp.Uploaded = st.uploaded
	}
	return resp, nil
}

// describeLocked answers a Fence or Status. Requires s.mu.
func (s *Server) describeLocked(st *segState, created int64) *quorumpb.FenceResponse {
	resp := &quorumpb.FenceResponse{Known: s.vouches(created), Lac: -1, Uploaded: -1}
	if st == nil {
		return resp
	}
	resp.Lac, resp.Uploaded, resp.Fenced = st.lac, st.uploaded, st.fenced
	resp.Blocks = make([]int64, 0, len(st.blocks))
	for n := range st.blocks {
		resp.Blocks = append(resp.Blocks, n)
	}
	slices.Sort(resp.Blocks)
	return resp
}

// Fence implements quorumpb.LogStoreServer: the segment takes no more
// blocks here (its state is created if the replica had none). Idempotent.
func (s *Server) Fence(_ context.Context, req *quorumpb.FenceRequest) (*quorumpb.FenceResponse, error) {
	k, err := s.begin(req)
	if err != nil {
		return nil, err
	}
	st, err := s.lockSeg(k, true, nil)
	if err != nil {
		return nil, err
	}
	defer st.jmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !st.fenced {
		st.fenced = true
		st.watchChangedLocked()
		s.log.Debug("segment fenced", zap.Int64("log", k.log), zap.Int64("segment", k.seg),
			zap.Int64("epoch", req.GetSegment().GetEpoch()), zap.Int("blocks", len(st.blocks)))
	}
	if !st.jfenced && !st.released {
		if err := s.persistLocked(st, journal.Record{Kind: journal.KindFence}); err != nil {
			return nil, err
		}
	}
	s.m.fences.Inc()
	return s.describeLocked(st, req.GetCreatedRevision()), nil
}

// Status implements quorumpb.LogStoreServer: Fence without fencing.
func (s *Server) Status(_ context.Context, req *quorumpb.StatusRequest) (*quorumpb.FenceResponse, error) {
	k, err := s.begin(req)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.describeLocked(s.segLocked(k, false), req.GetCreatedRevision()), nil
}

// ReadBlock implements quorumpb.LogStoreServer.
func (s *Server) ReadBlock(_ context.Context, req *quorumpb.ReadBlockRequest) (*quorumpb.ReadBlockResponse, error) {
	k, err := s.begin(req)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.segLocked(k, false); st != nil {
		if b, ok := st.blocks[req.GetBlockNo()]; ok {
			return &quorumpb.ReadBlockResponse{Block: b}, nil
		}
	}
	return nil, s.refuse(codes.NotFound, "", "logstore %s does not hold block %d of log %d segment %d",
		s.cfg.NodeID, req.GetBlockNo(), k.log, k.seg)
}

// Release implements quorumpb.LogStoreServer: the segment's blocks are
// dropped and its uploads stopped; it stays fenced (a tombstone).
func (s *Server) Release(_ context.Context, req *quorumpb.ReleaseRequest) (*quorumpb.ReleaseResponse, error) {
	k, err := s.begin(req)
	if err != nil {
		return nil, err
	}
	st, err := s.lockSeg(k, true, nil)
	if err != nil {
		return nil, err
	}
	defer st.jmu.Unlock()
	var forget []segKey // tombstones forgotten
	s.mu.Lock()
	if !st.released {
		for n := range st.blocks {
			s.removeLocked(st, n)
		}
		st.blocks = nil
		st.fenced, st.released = true, true
		st.cancel()
		st.notifyLocked()
		s.released = append(s.released, k)
		for len(s.released) > s.cfg.MaxReleased {
			old := s.released[0]
			s.released = s.released[1:]
			if o := s.segs[old]; o != nil && o.released {
				delete(s.segs, old)
				forget = append(forget, old)
			}
		}
		s.m.segments.Set(float64(len(s.segs)))
		s.log.Debug("segment released", zap.Int64("log", k.log), zap.Int64("segment", k.seg))
	}
	s.mu.Unlock()
	if err := s.releaseJournal(st); err != nil {
		return nil, err
	}
	if s.cfg.Journal != nil {
		for _, o := range forget {
			if err := s.cfg.Journal.Forget(o.log, o.seg); err != nil {
				s.log.Warn("journal: could not remove a tombstone", zap.Int64("log", o.log), zap.Int64("segment", o.seg), zap.Error(err))
			}
		}
	}
	return &quorumpb.ReleaseResponse{}, nil
}
