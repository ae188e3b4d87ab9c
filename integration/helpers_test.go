package integration

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/s3store"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// soak reports whether the long variants run: not -short, and
// WOODPECKER_SOAK=1.
func soak() bool { return !testing.Short() && os.Getenv("WOODPECKER_SOAK") == "1" }

// Kinds of storage a site can use.
const (
	kindMinIO = "minio"
	kindLocal = "localfs"
	kindMem   = "memstore"
	// kindShared is MinIO with shared objects (docs/shared-objects.md):
	// writer.batchWindow > 0, so a client packs the blocks of all its logs
	// into shared objects committed by etcd transactions.
	kindShared = "shared"
	// kindQuorumShared is QuorumBuffer whose LogStores pack the blocks of
	// every log they serve into shared objects (writer.batchWindow > 0 on
	// the client places segments so).
	kindQuorumShared = "quorum-shared"
)

// sharedWindow is writer.batchWindow on kindShared sites.
const sharedWindow = 5 * time.Millisecond

// site is where one test keeps its logs: an etcd prefix and a storage. It
// is plain data (except mem) so a child process can be told about it.
type site struct {
	Kind          string     `json:"kind"`
	EtcdEndpoints []string   `json:"etcdEndpoints"`
	EtcdRoot      string     `json:"etcdRoot"`
	Dir           string     `json:"dir,omitempty"`    // kindLocal
	S3            testenv.S3 `json:"s3"`               // kindMinIO, kindShared, kindQuorum
	Bucket        string     `json:"bucket,omitempty"` // kindMinIO, kindShared, kindQuorum

	mem    *memstore.Store // kindMem; not visible to children
	stores *logStores      // kindQuorum: the LogStore processes
}

// newSite prepares a fresh etcd prefix and storage of kind on the shared
// servers.
func newSite(t *testing.T, kind string) *site {
	t.Helper()
	s := &site{Kind: kind, EtcdEndpoints: testenv.EtcdEndpoints(t), EtcdRoot: testenv.UniquePrefix(t)}
	switch kind {
	case kindMinIO, kindShared:
		s.S3 = testenv.MinIO(t)
		s.Bucket = testenv.NewBucket(t, s.S3)
	case kindLocal:
		s.Dir = t.TempDir()
	case kindMem:
		s.mem = memstore.New()
	case kindQuorum, kindQuorumShared:
		s.S3 = testenv.MinIO(t)
		s.Bucket = testenv.NewBucket(t, s.S3)
		s.stores = startLogStores(t, s)
	default:
		t.Fatalf("unknown storage kind %q", kind)
	}
	return s
}

// siteOn returns a site on a MinIO server the test owns (StartMinIO).
func siteOn(t *testing.T, s3 testenv.S3) *site {
	t.Helper()
	return &site{Kind: kindMinIO, EtcdEndpoints: testenv.EtcdEndpoints(t), EtcdRoot: testenv.UniquePrefix(t),
		S3: s3, Bucket: testenv.NewBucket(t, s3)}
}

// config returns the client configuration of the site, with test-friendly
// retry settings, adjusted by tweak.
func (s *site) config(tweak func(*options.Config)) options.Config {
	cfg := options.Default()
	cfg.Etcd.Endpoints = s.EtcdEndpoints
	cfg.Etcd.RootPath = s.EtcdRoot
	switch s.Kind {
	case kindLocal:
		cfg.Storage.Type = options.StorageLocal
		cfg.Storage.RootPath = s.Dir
	case kindMinIO, kindShared, kindQuorum, kindQuorumShared:
		switch s.Kind {
		case kindQuorum:
			cfg.Mode = options.ModeQuorumBuffer
		case kindQuorumShared:
			cfg.Mode = options.ModeQuorumBuffer
			cfg.Writer.BatchWindow = sharedWindow
		case kindShared:
			cfg.Writer.BatchWindow = sharedWindow
		}
		cfg.Storage.Type = options.StorageMinIO
		cfg.Storage.Endpoint = s.S3.Endpoint
		cfg.Storage.AccessKey, cfg.Storage.SecretKey = s.S3.AccessKey, s.S3.SecretKey
		cfg.Storage.Region = s.S3.Region
		cfg.Storage.UseSSL = s.S3.Secure
		cfg.Storage.Bucket = s.Bucket
		cfg.Storage.RootPath = ""
	}
	cfg.Writer.UploadRetry.MaxBackoff = 500 * time.Millisecond
	if tweak != nil {
		tweak(&cfg)
	}
	return cfg
}

// openS3 opens the site's bucket, closed at t.Cleanup.
func (s *site) openS3(t testing.TB) *s3store.Store {
	t.Helper()
	st, err := s3store.Open(context.Background(), s3store.Config{
		Endpoint: s.S3.Endpoint, AccessKey: s.S3.AccessKey, SecretKey: s.S3.SecretKey,
		Bucket: s.Bucket, Region: s.S3.Region, Secure: s.S3.Secure,
	})
	if err != nil {
		t.Fatalf("open bucket %s: %v", s.Bucket, err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// store returns an object store on the site's data (MinIO or memstore), for
// tests that look at or damage objects behind the engine's back.
func (s *site) store(t testing.TB) objstore.Store {
	t.Helper()
	switch s.Kind {
	case kindMinIO, kindShared, kindQuorum, kindQuorumShared:
		return s.openS3(t)
	case kindMem:
		return s.mem
	}
	t.Fatalf("site %s has no object store", s.Kind)
	return nil
}

// client returns a new client of the site, closed at t.Cleanup. Each call
// returns a separate client (its own in-process tail notifications), like
// another process would have; they share the test's etcd connection.
func (s *site) client(t testing.TB, tweak func(*options.Config)) *woodpecker.Client {
	t.Helper()
	cfg := s.config(tweak)
	opts := []woodpecker.Option{woodpecker.WithEtcdClient(testenv.Etcd(t))}
	switch s.Kind {
	case kindMinIO, kindShared, kindQuorum, kindQuorumShared:
		// The client does not close a store it opened itself; give it
		// one this test closes.
		opts = append(opts, woodpecker.WithObjectStore(s.openS3(t)))
	case kindMem:
		opts = append(opts, woodpecker.WithObjectStore(s.mem))
	}
	c, err := woodpecker.New(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatalf("new client on %s: %v", s.Kind, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func createLog(t testing.TB, c *woodpecker.Client, name string) *woodpecker.Log {
	t.Helper()
	ctx := context.Background()
	if err := c.CreateLog(ctx, name); err != nil {
		t.Fatalf("create log %q: %v", name, err)
	}
	return openLog(t, c, name)
}

func openLog(t testing.TB, c *woodpecker.Client, name string) *woodpecker.Log {
	t.Helper()
	l, err := c.OpenLog(context.Background(), name)
	if err != nil {
		t.Fatalf("open log %q: %v", name, err)
	}
	return l
}

func openReader(t testing.TB, l *woodpecker.Log, from woodpecker.StartPosition) *woodpecker.Reader {
	t.Helper()
	r, err := l.OpenReader(context.Background(), from)
	if err != nil {
		t.Fatalf("open reader on %q: %v", l.Name(), err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// Payloads identify themselves: "<tag>:<seq>:" then 80 to 200 bytes derived
// from tag and seq, so a reader can check any entry's bytes without a copy
// of what was written. Tags hold no ':'.

func payloadSeed(tag string, seq int64) uint64 {
	h := fnv.New64a()
	h.Write([]byte(tag))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(seq))
	h.Write(b[:])
	return h.Sum64()
}

func makePayload(tag string, seq int64) []byte {
	return makePayloadSize(tag, seq, 80+int(payloadSeed(tag, seq)%121))
}

// makePayloadSize makes a payload whose filler is n bytes.
func makePayloadSize(tag string, seq int64, n int) []byte {
	x := payloadSeed(tag, seq) | 1
	p := make([]byte, 0, len(tag)+22+n)
	p = append(p, tag...)
	p = append(p, ':')
	p = strconv.AppendInt(p, seq, 10)
	p = append(p, ':')
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		p = append(p, 'a'+byte(x%26))
	}
	return p
}

// parsePayload returns the tag and sequence number of a payload made by
// makePayload or makePayloadSize, after checking every byte.
func parsePayload(p []byte) (tag string, seq int64, err error) {
	parts := strings.SplitN(string(p), ":", 3)
	if len(parts) != 3 {
		return "", 0, errors.Newf("payload %.40q is not tag:seq:filler", p)
	}
	seq, err = strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return "", 0, errors.Newf("payload %.40q: bad sequence number", p)
	}
	want := makePayloadSize(parts[0], seq, len(parts[2]))
	if string(want) != string(p) {
		return "", 0, errors.Newf("payload %.40q... (%d bytes): filler bytes differ from what was written", p, len(p))
	}
	return parts[0], seq, nil
}

// seen is one entry as a reader returned it, its payload checked.
type seen struct {
	ID  woodpecker.EntryID
	Tag string
	Seq int64
}

func (s seen) String() string { return fmt.Sprintf("%v=%s:%d", s.ID, s.Tag, s.Seq) }

// key names the append an entry came from.
func (s seen) key() appendKey { return appendKey{s.Tag, s.Seq} }

type appendKey struct {
	Tag string
	Seq int64
}

func (k appendKey) String() string { return fmt.Sprintf("%s:%d", k.Tag, k.Seq) }

// readN reads n entries, checking each payload, and fails on any error.
func readN(ctx context.Context, r *woodpecker.Reader, n int) ([]seen, error) {
	out := make([]seen, 0, n)
	for len(out) < n {
		e, err := r.Next(ctx)
		if err != nil {
			return out, errors.Wrapf(err, "after %d of %d entries", len(out), n)
		}
		tag, seq, err := parsePayload(e.Payload)
		if err != nil {
			return out, errors.Wrapf(err, "entry %v", e.ID)
		}
		out = append(out, seen{ID: e.ID, Tag: tag, Seq: seq})
	}
	return out, nil
}

// expectSilent checks that the reader has nothing more for a moment.
func expectSilent(t testing.TB, r *woodpecker.Reader, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if e, err := r.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s: reader returned %v (%d bytes), %v after the expected end; want nothing", what, e.ID, len(e.Payload), err)
	}
}

// sealedEntries returns how many entries the log's segments hold, once
// every segment is sealed; the test fails if one is still open.
func sealedEntries(t testing.TB, l *woodpecker.Log) int {
	t.Helper()
	st, err := l.Stats(context.Background())
	if err != nil {
		t.Fatalf("stats of %q: %v", l.Name(), err)
	}
	for _, sg := range st.Segments {
		if !sg.Sealed {
			t.Fatalf("log %q: segment %d is still open; want all sealed (%+v)", l.Name(), sg.ID, st.Segments)
		}
	}
	return int(st.SealedEntries)
}

// readWhole reads the whole log from Earliest with a fresh reader, once
// every segment is sealed: exactly the entries its segments hold, then
// nothing.
func readWhole(t testing.TB, l *woodpecker.Log) []seen {
	t.Helper()
	n := sealedEntries(t, l)
	r := openReader(t, l, woodpecker.Earliest())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	got, err := readN(ctx, r, n)
	if err != nil {
		t.Fatalf("read log %q from the start (%d entries by its metadata): %v", l.Name(), n, err)
	}
	expectSilent(t, r, "whole-log reader")
	_ = r.Close()
	return got
}

// checkOrdered fails unless ids strictly increase and no append appears
// twice.
func checkOrdered(t testing.TB, what string, got []seen) {
	t.Helper()
	dup := make(map[appendKey]woodpecker.EntryID, len(got))
	for i, e := range got {
		if i > 0 && !got[i-1].ID.Less(e.ID) {
			t.Fatalf("%s: entry %d: id %v does not follow %v", what, i, e.ID, got[i-1].ID)
		}
		if prev, ok := dup[e.key()]; ok {
			t.Fatalf("%s: append %v appears twice, as %v and %v", what, e.key(), prev, e.ID)
		}
		dup[e.key()] = e.ID
	}
}

// sameEntries fails unless got and want are the same sequence.
func sameEntries(t testing.TB, what string, got, want []seen) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("%s: entry %d is %v, want %v", what, i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
}

// outcomes records what each append was told.
type outcomes struct {
	acked    map[appendKey]woodpecker.EntryID
	unknown  map[appendKey]error // may or may not be in the log
	definite map[appendKey]error // must not be in the log
}

func newOutcomes() *outcomes {
	return &outcomes{acked: map[appendKey]woodpecker.EntryID{}, unknown: map[appendKey]error{}, definite: map[appendKey]error{}}
}

// record files one append's result. A nil error needs the id.
func (o *outcomes) record(k appendKey, id woodpecker.EntryID, err error) {
	switch {
	case err == nil:
		o.acked[k] = id
	case errors.Is(err, woodpecker.ErrUnknownOutcome):
		o.unknown[k] = err
	default:
		o.definite[k] = err
	}
}

func (o *outcomes) merge(p *outcomes) {
	for k, v := range p.acked {
		o.acked[k] = v
	}
	for k, v := range p.unknown {
		o.unknown[k] = v
	}
	for k, v := range p.definite {
		o.definite[k] = v
	}
}

// check fails unless the log's entries got honour the outcomes: every
// acknowledged append is present exactly once with its id, no append that
// failed definitely is present, and nothing present was never appended.
func (o *outcomes) check(t testing.TB, what string, got []seen) {
	t.Helper()
	checkOrdered(t, what, got)
	present := make(map[appendKey]woodpecker.EntryID, len(got))
	for _, e := range got {
		present[e.key()] = e.ID
		if err, ok := o.definite[e.key()]; ok {
			t.Fatalf("%s: append %v failed with a definite error, yet readers see it as %v; its error: %v", what, e.key(), e.ID, err)
		}
		if _, ok := o.acked[e.key()]; !ok {
			if _, ok := o.unknown[e.key()]; !ok {
				t.Fatalf("%s: entry %v holds %v, which no append was told about", what, e.ID, e.key())
			}
		}
	}
	var missing []string
	for k, id := range o.acked {
		got, ok := present[k]
		switch {
		case !ok:
			missing = append(missing, fmt.Sprintf("%v (acked as %v)", k, id))
		case got != id:
			t.Fatalf("%s: append %v was acknowledged as %v but readers see it as %v", what, k, id, got)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Fatalf("%s: %d acknowledged entries are missing, e.g. %v", what, len(missing), missing[:min(len(missing), 10)])
	}
}
