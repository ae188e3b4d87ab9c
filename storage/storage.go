// Package storage opens the durability backend a configuration describes:
// segments kept as objects in an object store (MinIO or any S3-compatible
// store through minio-go, AWS S3 through the AWS SDK), or as files in a
// local directory. The client, the woodpecker command and, through the
// client, garbage collection all get their backend from Open, so a new
// backend is added here and nowhere else.
package storage

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"sync"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/awss3"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/s3store"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/quorum"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/shared"
)

// Storage is an open durability backend. Close it when done; its fields
// stay readable after Close, but the stores it opened must not be used.
type Storage struct {
	// Backend stores and reads the segments.
	Backend segment.Backend
	// Store is the object store Backend keeps segments in, as wrapped by
	// WithWrap; nil for local storage.
	Store objstore.Store
	// Raw is Store before WithWrap: what was opened or given with
	// WithStore. Tools that measure or inspect the store itself use it.
	// nil for local storage.
	Raw objstore.Store

	close     func() error // releases what Open opened; nil when nothing
	closeOnce sync.Once
	closeErr  error
}

// Close releases what Open opened (not a store given with WithStore). It
// is idempotent and returns the first call's error.
func (s *Storage) Close() error {
	s.closeOnce.Do(func() {
		if s.close != nil {
			s.closeErr = s.close()
		}
	})
	return s.closeErr
}

// Option adjusts Open.
type Option func(*openOptions)

type openOptions struct {
	store objstore.Store
	wrap  func(objstore.Store) objstore.Store
	etcd  *clientv3.Client
	tr    quorum.Transport
	index shared.Index
	log   *zap.Logger
	sm    shared.StreamMetrics
}

// WithIndex gives Open the metadata that shared objects commit to and
// read extents from (the client's meta.Store). Without it, segments of
// shared objects can be neither written nor read.
func WithIndex(index shared.Index, logger *zap.Logger) Option {
	return func(o *openOptions) { o.index, o.log = index, logger }
}

// WithStreamMetrics makes the shared-object stream report to m.
func WithStreamMetrics(m shared.StreamMetrics) Option {
	return func(o *openOptions) { o.sm = m }
}

// WithQuorumTransport makes QuorumBuffer reach its LogStores through t,
// which the caller owns, instead of a gRPC transport of its own.
func WithQuorumTransport(t quorum.Transport) Option {
	return func(o *openOptions) { o.tr = t }
}

// WithEtcd gives Open the etcd client whose registry lists the LogStores
// (mode quorumBuffer without quorum.logStores).
func WithEtcd(cli *clientv3.Client) Option {
	return func(o *openOptions) { o.etcd = cli }
}

// WithStore keeps segments in store, whatever cfg.Type says (a test's
// memory store, the command's bench-only memory backend, a store a caller
// of the client library built). The caller keeps ownership: Close does not
// close it.
func WithStore(store objstore.Store) Option {
	return func(o *openOptions) { o.store = store }
}

// WithWrap makes the backend keep segments in wrap(store) instead of the
// object store itself: instrumentation, request counting, fault injection.
// It does not apply to local storage.
func WithWrap(wrap func(objstore.Store) objstore.Store) Option {
	return func(o *openOptions) { o.wrap = wrap }
}

// Open opens the backend cfg.Storage describes, or an object backend on
// the store WithStore gives. An object store is reached within ctx: the
// server must answer and hold the bucket (or create it, with
// storage.createBucket). Open does not check that the store honours
// create-only writes (objstore.ProbeConditionalWrite); that is the
// caller's policy. Errors name the setting to check.
//
// Besides cfg.Storage, Open reads writer.maxInflightUploads: an object
// backend sends at most that many requests at once for one writer or one
// compaction. Reader settings go to cursors (segment.PrefetchCursor).
func Open(ctx context.Context, cfg options.Config, opts ...Option) (*Storage, error) {
	var o openOptions
	for _, opt := range opts {
		opt(&o)
	}
	sc := cfg.Storage
	st := &Storage{Raw: o.store}
	if st.Raw == nil {
		switch sc.Type {
		case options.StorageLocal:
			b, err := segment.NewFileBackend(ctx, sc.RootPath)
			if err != nil {
				return nil, errors.Wrap(err, "open local storage: check storage.rootPath")
			}
			st.Backend = b
			return st, nil
		case options.StorageMinIO, options.StorageS3:
			own, err := openObjectStore(ctx, sc)
			if err != nil {
				return nil, err
			}
			st.Raw, st.close = own, own.Close
		default:
			return nil, errors.Newf("storage.type %q has no backend (allowed: minio, s3, local)", sc.Type)
		}
	}
	st.Store = st.Raw
	if o.wrap != nil {
		st.Store = o.wrap(st.Raw)
	}
	objects := segment.NewObjectBackend(st.Store, "", cfg.Writer.MaxInflightUploads)
	st.Backend = objects
	switch {
	case cfg.Mode == options.ModeQuorumBuffer && cfg.Writer.BatchWindow > 0 && o.index == nil:
		return nil, errors.New("writer.batchWindow > 0 needs the etcd metadata: open storage through the client")
	case cfg.Mode == options.ModeQuorumBuffer:
		st.Backend = openQuorum(cfg, objects, o, st)
	case o.index != nil:
		st.Backend = openShared(cfg, objects, o, st)
	case cfg.Writer.BatchWindow > 0:
		return nil, errors.New("writer.batchWindow > 0 needs the etcd metadata: open storage through the client")
	}
	return st, nil
}

// openShared puts the shared-object stream in front of the object backend
// (it routes segments of the per-log layout to it).
func openShared(cfg options.Config, objects *segment.ObjectBackend, o openOptions, st *Storage) segment.Backend {
	w := cfg.Writer
	b := shared.NewBackend(objects, o.index, shared.StreamConfig{
		Window: w.BatchWindow, ObjectSize: w.ObjectBytes, MaxInflight: w.MaxInflightObjects,
		RetryTimeout: w.UploadRetry.TotalTimeout, RetryInitial: w.UploadRetry.InitialBackoff,
		RetryMax: w.UploadRetry.MaxBackoff, Metrics: o.sm,
	}, o.log)
	prev := st.close
	st.close = func() error {
		err := b.Close()
		if prev != nil {
			err = errors.CombineErrors(err, prev())
		}
		return err
	}
	return b
}

// openQuorum puts QuorumBuffer's backend in front of the object backend
// its LogStores upload to.
func openQuorum(cfg options.Config, objects *segment.ObjectBackend, o openOptions, st *Storage) segment.Backend {
	tr := o.tr
	if tr == nil {
		own := quorum.NewGRPCTransport(nil)
		prev := st.close
		st.close = func() error {
			err := own.Close()
			if prev != nil {
				err = errors.CombineErrors(err, prev())
			}
			return err
		}
		tr = own
	}
	var nodes []quorum.Node
	for _, a := range cfg.Quorum.LogStores {
		nodes = append(nodes, quorum.Node{ID: a, Addr: a})
	}
	var sh *shared.Backend // reads segments the LogStores put in shared objects
	if o.index != nil {
		sh = shared.NewBackend(objects, o.index, shared.StreamConfig{}, o.log)
	}
	return quorum.New(quorum.Config{Objects: objects, Shared: sh, SharedObjects: cfg.Writer.BatchWindow > 0,
		Transport: tr, Etcd: o.etcd, Root: cfg.Etcd.RootPath,
		Nodes: nodes, Parallel: cfg.Quorum.MaxInflightBlocks, CallTimeout: cfg.Quorum.CallTimeout,
		SealStall: cfg.Writer.UploadRetry.TotalTimeout, SealInitialBackoff: cfg.Writer.UploadRetry.InitialBackoff,
		SealMaxBackoff: cfg.Writer.UploadRetry.MaxBackoff})
}

// closableStore is an object store Open opened and Close closes.
type closableStore interface {
	objstore.Store
	Close() error
}

// openObjectStore connects to the object store cfg describes: "minio" is
// any S3-compatible store through minio-go, "s3" is AWS S3 through the AWS
// SDK.
func openObjectStore(ctx context.Context, cfg options.StorageConfig) (closableStore, error) {
	tc, err := clientTLS(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Type == options.StorageS3 {
		return awss3.Open(ctx, awss3.Config{
			Endpoint: cfg.Endpoint, AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey,
			Bucket: cfg.Bucket, Region: cfg.Region, Secure: cfg.UseSSL,
			RootPath: cfg.RootPath, CreateBucket: cfg.CreateBucket, TLS: tc,
		})
	}
	return s3store.Open(ctx, s3store.Config{
		Endpoint: cfg.Endpoint, AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey,
		Bucket: cfg.Bucket, Region: cfg.Region, Secure: cfg.UseSSL,
		RootPath: cfg.RootPath, CreateBucket: cfg.CreateBucket, TLS: tc,
	})
}

// clientTLS returns the TLS configuration storage.tls asks for, or nil for
// the store client's default (the system roots, verification on).
func clientTLS(cfg options.StorageConfig) (*tls.Config, error) {
	if !cfg.UseSSL || (cfg.TLS.CAFile == "" && !cfg.TLS.InsecureSkipVerify) {
		return nil, nil
	}
	tc := &tls.Config{InsecureSkipVerify: cfg.TLS.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // asked for by storage.tls.insecureSkipVerify
	if cfg.TLS.CAFile != "" {
		pem, err := os.ReadFile(cfg.TLS.CAFile)
		if err != nil {
			return nil, errors.Wrapf(err, "storage.tls: read CA file %s", cfg.TLS.CAFile)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.Newf("storage.tls: CA file %s holds no PEM certificate", cfg.TLS.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}
