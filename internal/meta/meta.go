// Package meta keeps a log's metadata in etcd: logs and their numeric ids,
// the writer that owns each log, segments and their states, and the
// truncation point.
//
// etcd is written at segment events, never per entry. Every change is a
// transaction with a compare: on the key's revision, and, for changes a
// writer makes, on the log's writer key holding that writer's token. Writer
// ownership, truncation and segments live under separate keys, so moving the
// truncation point never invalidates the writer (a fault of earlier designs
// that fenced healthy writers).
//
// Layout under the root prefix:
//
//	<root>/idgen                    last allocated log id
//	<root>/logs/<name>              LogInfo (id, name, creation time)
//	<root>/log/<id>/writer          "<epoch>:<token>" of the writer that owns the log
//	<root>/log/<id>/trunc           truncation point
//	<root>/log/<id>/seg/<segid>     SegmentMeta
//	<root>/deleted/<id>             a deleted log whose data awaits garbage collection
//
// Shared objects add extents of open segments and object records
// (extents.go).
//
// Garbage collection and readers add (gc.go):
//
//	<root>/log/<id>/gc              GCState: the GC floor, last runs, measured usage
//	<root>/log/<id>/retention       the log's own retention TTL, when set
//	<root>/log/<id>/readers/<lease> a reader's position, under the reader's lease
//	<root>/gclock/<id>              the garbage collector working on log id, under its lease
package meta

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cockroachdb/errors"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// MaxLogNameLen bounds log names.
const MaxLogNameLen = 255

// LogInfo is the immutable description of a log.
type LogInfo struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

// SegmentState is a segment's place in its life cycle.
type SegmentState string

// Segment states.
const (
	SegmentOpen   SegmentState = "open"
	SegmentSealed SegmentState = "sealed"
)

// SegmentMeta describes one segment.
type SegmentMeta struct {
	LogID int64        `json:"logId"`
	ID    int64        `json:"id"`
	Epoch int64        `json:"epoch"`
	State SegmentState `json:"state"`
	// LastEntry is the last entry id of a sealed segment, -1 when it is
	// empty. Meaningless while the segment is open.
	LastEntry int64 `json:"lastEntry"`
	// Blocks and Bytes count the sealed segment's blocks and stored bytes.
	Blocks    int64     `json:"blocks"`
	Bytes     int64     `json:"bytes"`
	CreatedAt time.Time `json:"createdAt"`
	SealedAt  time.Time `json:"sealedAt,omitzero"`
	// Writer is the token ("<epoch>:<nonce>") of the writer that created
	// the segment, so that a retried creation recognises its own record.
	// Empty in records of earlier versions.
	Writer string `json:"writer,omitempty"`
	// Placement is what the segment's durability backend chose for it when
	// it was created (for QuorumBuffer, its ensemble of LogStores), opaque
	// to the metadata; empty for backends that choose nothing.
	Placement []byte `json:"placement,omitempty"`

	// Compaction and garbage collection (see gc.go). Generation is the
	// compaction generation of the layout readers use: 0 is the writer's
	// blocks, g > 0 the objects compaction g wrote. Objects counts that
	// layout's data objects (0: one per block). Retiring is set while the
	// objects of generation Generation-1 that the current layout does not
	// reuse await deletion, which is allowed from CompactedAt plus the
	// old-blocks grace period on. Deleting marks a segment whose objects
	// garbage collection is deleting: readers treat it as truncated.
	Generation  int64     `json:"generation,omitempty"`
	Objects     int64     `json:"objects,omitempty"`
	CompactedAt time.Time `json:"compactedAt,omitzero"`
	Retiring    bool      `json:"retiring,omitempty"`
	Deleting    bool      `json:"deleting,omitempty"`

	// Revision is the etcd mod revision this value was read at; it is the
	// compare of the next update. Not stored.
	Revision int64 `json:"-"`
}

// Position is an entry id (segment, entry) as the metadata stores it.
type Position struct {
	Segment int64 `json:"segment"`
	Entry   int64 `json:"entry"`
}

// Less orders positions in log order.
func (p Position) Less(q Position) bool {
	return p.Segment < q.Segment || (p.Segment == q.Segment && p.Entry < q.Entry)
}

// Store is the etcd-backed metadata store. It is safe for concurrent use.
// Every etcd request it makes has a deadline (WithCallTimeout).
type Store struct {
	cli  deadlineClient
	root string
}

// New returns a store that keeps its keys under root (for example
// "woodpecker"). The caller owns cli and closes it.
func New(cli *clientv3.Client, root string, opts ...Option) *Store {
	s := &Store{cli: deadlineClient{Client: cli, kv: cli.KV, timeout: DefaultCallTimeout}, root: strings.TrimSuffix(root, "/")}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Client returns the etcd client, without the store's deadlines.
func (s *Store) Client() *clientv3.Client { return s.cli.Client }

func (s *Store) idgenKey() string               { return s.root + "/idgen" }
func (s *Store) logKey(name string) string      { return s.root + "/logs/" + name }
func (s *Store) logsPrefix() string             { return s.root + "/logs/" }
func (s *Store) writerKey(id int64) string      { return fmt.Sprintf("%s/log/%d/writer", s.root, id) }
func (s *Store) truncKey(id int64) string       { return fmt.Sprintf("%s/log/%d/trunc", s.root, id) }
func (s *Store) logDataPrefix(id int64) string  { return fmt.Sprintf("%s/log/%d/", s.root, id) }
func (s *Store) deletedKey(id int64) string     { return fmt.Sprintf("%s/deleted/%d", s.root, id) }
func (s *Store) SegmentsPrefix(id int64) string { return fmt.Sprintf("%s/log/%d/seg/", s.root, id) }
func (s *Store) segKey(logID, segID int64) string {
	return fmt.Sprintf("%s%019d", s.SegmentsPrefix(logID), segID)
}

// ValidateLogName rejects names that are empty, too long, or hold a slash or
// control characters (names are etcd key components).
func ValidateLogName(name string) error {
	switch {
	case name == "":
		return errors.Wrap(walerr.ErrInvalidName, "log name is empty")
	case len(name) > MaxLogNameLen:
		return errors.Wrapf(walerr.ErrInvalidName, "log name is %d bytes long, the limit is %d", len(name), MaxLogNameLen)
	case strings.ContainsRune(name, '/'):
		return errors.Wrapf(walerr.ErrInvalidName, "log name %q contains '/'", name)
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return errors.Wrapf(walerr.ErrInvalidName, "log name %q contains a control or invalid character", name)
		}
	}
	return nil
}

// CreateLog allocates an id and creates the log, or returns ErrLogExists.
func (s *Store) CreateLog(ctx context.Context, name string) (LogInfo, error) {
	if err := ValidateLogName(name); err != nil {
		return LogInfo{}, err
	}
	for {
		gen, err := s.cli.Get(ctx, s.idgenKey())
		if err != nil {
			return LogInfo{}, errors.Wrap(err, "create log: read id generator")
		}
		var last int64
		var genRev int64
		if len(gen.Kvs) == 1 {
			genRev = gen.Kvs[0].ModRevision
			if last, err = strconv.ParseInt(string(gen.Kvs[0].Value), 10, 64); err != nil {
				return LogInfo{}, errors.Wrapf(walerr.ErrCorrupt, "log id generator holds %q", gen.Kvs[0].Value)
			}
		}
		info := LogInfo{ID: last + 1, Name: name, CreatedAt: time.Now().UTC()}
		val, _ := json.Marshal(info)
		resp, err := s.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(s.idgenKey()), "=", genRev),
			clientv3.Compare(clientv3.CreateRevision(s.logKey(name)), "=", 0),
		).Then(
			clientv3.OpPut(s.idgenKey(), strconv.FormatInt(info.ID, 10)),
			clientv3.OpPut(s.logKey(name), string(val)),
		).Else(
			clientv3.OpGet(s.logKey(name)),
		).Commit()
		if err != nil {
			return LogInfo{}, errors.Wrapf(err, "create log %q", name)
		}
		if resp.Succeeded {
			return info, nil
		}
		if len(resp.Responses[0].GetResponseRange().Kvs) > 0 {
			return LogInfo{}, errors.Wrapf(walerr.ErrLogExists, "create log %q", name)
		}
		// Another log took the id; allocate again.
	}
}

// GetLog returns the log's description, or ErrLogNotFound.
func (s *Store) GetLog(ctx context.Context, name string) (LogInfo, error) {
	if err := ValidateLogName(name); err != nil {
		return LogInfo{}, err
	}
	resp, err := s.cli.Get(ctx, s.logKey(name))
	if err != nil {
		return LogInfo{}, errors.Wrapf(err, "read log %q", name)
	}
	if len(resp.Kvs) == 0 {
		return LogInfo{}, errors.Wrapf(walerr.ErrLogNotFound, "log %q", name)
	}
	var info LogInfo
	if err := json.Unmarshal(resp.Kvs[0].Value, &info); err != nil {
		return LogInfo{}, errors.Wrapf(walerr.ErrCorrupt, "log %q metadata: %v", name, err)
	}
	return info, nil
}

// ListLogs returns every log's name in sorted order.
func (s *Store) ListLogs(ctx context.Context) ([]string, error) {
	resp, err := s.cli.Get(ctx, s.logsPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, errors.Wrap(err, "list logs")
	}
	names := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		names = append(names, strings.TrimPrefix(string(kv.Key), s.logsPrefix()))
	}
	return names, nil
}

// DeletedLog is a record left for garbage collection by DeleteLog.
type DeletedLog struct {
	LogInfo
	DeletedAt time.Time `json:"deletedAt"`
}

// DeleteLog removes the log's name, writer, truncation point and segments in
// one transaction and leaves a deleted-log record, so garbage collection can
// remove its data later. A writer still open on it is fenced. Returns
// ErrLogNotFound when the log does not exist.
func (s *Store) DeleteLog(ctx context.Context, name string) error {
	info, err := s.GetLog(ctx, name)
	if err != nil {
		return err
	}
	rec, _ := json.Marshal(DeletedLog{LogInfo: info, DeletedAt: time.Now().UTC()})
	resp, err := s.cli.Txn(ctx).If(
		clientv3.Compare(clientv3.CreateRevision(s.logKey(name)), ">", 0),
	).Then(
		clientv3.OpPut(s.deletedKey(info.ID), string(rec)),
		clientv3.OpDelete(s.logKey(name)),
		clientv3.OpDelete(s.logDataPrefix(info.ID), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return errors.Wrapf(err, "delete log %q", name)
	}
	if !resp.Succeeded {
		return errors.Wrapf(walerr.ErrLogNotFound, "delete log %q", name)
	}
	return nil
}

// WriterToken identifies one writer of a log: its epoch and a random nonce,
// so that two writers opened at the same epoch still fence each other.
type WriterToken struct {
	LogID int64
	Epoch int64
	Nonce string
}

func (t WriterToken) value() string { return fmt.Sprintf("%d:%s", t.Epoch, t.Nonce) }

func parseWriterValue(v []byte) (epoch int64, err error) {
	e, _, ok := strings.Cut(string(v), ":")
	if !ok {
		return 0, errors.Newf("writer key holds %q", v)
	}
	return strconv.ParseInt(e, 10, 64)
}

// AcquireWriter makes a new writer at epoch the owner of the log. It fails
// with ErrFenced when a writer of a higher epoch has owned the log; a writer
// of the same epoch is taken over (its later metadata changes fail).
func (s *Store) AcquireWriter(ctx context.Context, logID, epoch int64) (WriterToken, error) {
	if epoch < 0 {
		return WriterToken{}, errors.Newf("writer epoch %d is negative", epoch)
	}
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return WriterToken{}, errors.Wrap(err, "writer nonce")
	}
	tok := WriterToken{LogID: logID, Epoch: epoch, Nonce: hex.EncodeToString(nonce[:])}
	key := s.writerKey(logID)
	for {
		resp, err := s.cli.Get(ctx, key)
		if err != nil {
			return WriterToken{}, errors.Wrap(err, "acquire writer: read owner")
		}
		var rev int64
		if len(resp.Kvs) == 1 {
			rev = resp.Kvs[0].ModRevision
			cur, err := parseWriterValue(resp.Kvs[0].Value)
			if err != nil {
				return WriterToken{}, errors.Wrapf(walerr.ErrCorrupt, "log %d: %v", logID, err)
			}
			if cur > epoch {
				return WriterToken{}, errors.Wrapf(walerr.ErrFenced,
					"log %d is owned by epoch %d, above the requested epoch %d", logID, cur, epoch)
			}
		}
		txn, err := s.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(key), "=", rev),
			clientv3.Compare(clientv3.CreateRevision(s.deletedKey(logID)), "=", 0),
		).Then(clientv3.OpPut(key, tok.value())).Commit()
		if err != nil {
			return WriterToken{}, errors.Wrap(err, "acquire writer")
		}
		if txn.Succeeded {
			return tok, nil
		}
		if d, err := s.cli.Get(ctx, s.deletedKey(logID)); err == nil && len(d.Kvs) > 0 {
			return WriterToken{}, errors.Wrapf(walerr.ErrLogNotFound, "log %d was deleted", logID)
		}
	}
}

// ownerCmp is the compare every writer-made change carries.
func (s *Store) ownerCmp(tok WriterToken) clientv3.Cmp {
	return clientv3.Compare(clientv3.Value(s.writerKey(tok.LogID)), "=", tok.value())
}

// CheckOwner reports ErrFenced when tok no longer owns the log.
func (s *Store) CheckOwner(ctx context.Context, tok WriterToken) error {
	resp, err := s.cli.Get(ctx, s.writerKey(tok.LogID))
	if err != nil {
		return errors.Wrap(err, "check writer ownership")
	}
	if len(resp.Kvs) == 0 || string(resp.Kvs[0].Value) != tok.value() {
		return errors.Wrapf(walerr.ErrFenced, "log %d: writer epoch %d was replaced", tok.LogID, tok.Epoch)
	}
	return nil
}

// Segments returns the log's segments in id order.
func (s *Store) Segments(ctx context.Context, logID int64) ([]SegmentMeta, error) {
	resp, err := s.cli.Get(ctx, s.SegmentsPrefix(logID), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, errors.Wrapf(err, "list segments of log %d", logID)
	}
	segs := make([]SegmentMeta, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		sm, err := DecodeSegment(kv.Value, kv.ModRevision)
		if err != nil {
			return nil, errors.Wrapf(err, "log %d key %s", logID, kv.Key)
		}
		segs = append(segs, sm)
	}
	return segs, nil
}

// DecodeSegment parses a stored segment value.
func DecodeSegment(v []byte, rev int64) (SegmentMeta, error) {
	var sm SegmentMeta
	if err := json.Unmarshal(v, &sm); err != nil {
		return SegmentMeta{}, errors.Wrapf(walerr.ErrCorrupt, "segment metadata: %v", err)
	}
	sm.Revision = rev
	return sm, nil
}

// CreateSegment creates an open segment owned by tok, with the placement
// its backend chose (nil for none), in one transaction that compares tok's
// ownership. It fails with ErrFenced when tok no longer owns the log.
//
// It is idempotent: when an earlier call's transaction committed but its
// reply was lost, a retry finds the record tok wrote and returns it.
func (s *Store) CreateSegment(ctx context.Context, tok WriterToken, segID int64, placement []byte) (SegmentMeta, error) {
	sm := SegmentMeta{LogID: tok.LogID, ID: segID, Epoch: tok.Epoch, State: SegmentOpen, LastEntry: -1,
		CreatedAt: time.Now().UTC(), Writer: tok.value(), Placement: placement}
	val, _ := json.Marshal(sm)
	key := s.segKey(tok.LogID, segID)
	resp, err := s.cli.Txn(ctx).If(
		s.ownerCmp(tok),
		clientv3.Compare(clientv3.CreateRevision(key), "=", 0),
	).Then(clientv3.OpPut(key, string(val))).Else(
		clientv3.OpGet(key),
		clientv3.OpGet(s.writerKey(tok.LogID)),
	).Commit()
	if err != nil {
		return SegmentMeta{}, errors.Wrapf(err, "create segment %d of log %d", segID, tok.LogID)
	}
	if resp.Succeeded {
		sm.Revision = resp.Header.Revision
		return sm, nil
	}
	cur, owner := elseKV(resp, 0), elseKV(resp, 1)
	if owner == nil || string(owner.Value) != tok.value() {
		return SegmentMeta{}, errors.Wrapf(walerr.ErrFenced, "create segment %d of log %d: writer epoch %d was replaced",
			segID, tok.LogID, tok.Epoch)
	}
	if cur != nil {
		got, err := DecodeSegment(cur.Value, cur.ModRevision)
		if err != nil {
			return SegmentMeta{}, errors.Wrapf(err, "log %d segment %d", tok.LogID, segID)
		}
		if createdBy(got, tok) && bytes.Equal(got.Placement, placement) {
			return got, nil // an earlier attempt committed
		}
	}
	return SegmentMeta{}, errors.AssertionFailedf("log %d: segment %d exists already, created by another writer", tok.LogID, segID)
}

// createdBy reports whether tok created the segment record sm.
func createdBy(sm SegmentMeta, tok WriterToken) bool {
	return sm.Writer == tok.value() && sm.Epoch == tok.Epoch
}

// elseKV returns the single key an Else branch's i-th get read, or nil.
func elseKV(resp *clientv3.TxnResponse, i int) *mvccpb.KeyValue {
	if i >= len(resp.Responses) {
		return nil
	}
	kvs := resp.Responses[i].GetResponseRange().GetKvs()
	if len(kvs) == 0 {
		return nil
	}
	return kvs[0]
}

// maxSealConflicts bounds how often SealSegment retries after another
// client moved the record's revision without changing what it says.
const maxSealConflicts = 8

// SealSegment records that the segment is sealed with the given last entry,
// block count and size. The update compares the segment's revision and that
// tok owns the log; ErrFenced when it does not.
//
// It is idempotent: when an earlier call committed but its reply was lost,
// a retry finds the record already sealed with the same end and returns
// it. A record whose revision moved while it still says what sm says (open,
// same writer) is compared again at its new revision.
func (s *Store) SealSegment(ctx context.Context, tok WriterToken, sm SegmentMeta) (SegmentMeta, error) {
	want := sm
	want.State = SegmentSealed
	want.SealedAt = time.Now().UTC()
	val, _ := json.Marshal(want)
	key := s.segKey(sm.LogID, sm.ID)
	for attempt := 0; ; attempt++ {
		resp, err := s.cli.Txn(ctx).If(
			s.ownerCmp(tok),
			clientv3.Compare(clientv3.ModRevision(key), "=", want.Revision),
		).Then(
			clientv3.OpPut(key, string(val)),
			// A shared segment's extents now live in its seal record.
			clientv3.OpDelete(s.segmentExtentsPrefix(sm.LogID, sm.ID), clientv3.WithPrefix()),
		).Else(
			clientv3.OpGet(key),
			clientv3.OpGet(s.writerKey(tok.LogID)),
		).Commit()
		if err != nil {
			return SegmentMeta{}, errors.Wrapf(err, "seal segment %d of log %d", sm.ID, sm.LogID)
		}
		if resp.Succeeded {
			want.Revision = resp.Header.Revision
			return want, nil
		}
		cur, owner := elseKV(resp, 0), elseKV(resp, 1)
		if owner == nil || string(owner.Value) != tok.value() {
			return SegmentMeta{}, errors.Wrapf(walerr.ErrFenced, "seal segment %d of log %d: writer epoch %d was replaced",
				sm.ID, sm.LogID, tok.Epoch)
		}
		if cur == nil {
			return SegmentMeta{}, errors.Wrapf(walerr.ErrFenced, "seal segment %d of log %d: the record is gone", sm.ID, sm.LogID)
		}
		got, err := DecodeSegment(cur.Value, cur.ModRevision)
		if err != nil {
			return SegmentMeta{}, errors.Wrapf(err, "log %d segment %d", sm.LogID, sm.ID)
		}
		switch {
		case got.State == SegmentSealed && sameEnd(got, want):
			return got, nil // an earlier attempt committed
		case got.State == SegmentOpen && got.Epoch == sm.Epoch && got.Writer == sm.Writer && attempt < maxSealConflicts:
			want.Revision = got.Revision // touched, not changed: compare again
		default:
			return SegmentMeta{}, errors.Wrapf(walerr.ErrFenced,
				"log %d: segment %d changed while sealing it (now %s)", sm.LogID, sm.ID, got.State)
		}
	}
}

// sameEnd reports whether two sealed records say the segment ends at the
// same place.
func sameEnd(a, b SegmentMeta) bool {
	return a.LastEntry == b.LastEntry && a.Blocks == b.Blocks && a.Bytes == b.Bytes
}

// Truncation returns the log's truncation point; ok is false when the log
// was never truncated.
func (s *Store) Truncation(ctx context.Context, logID int64) (p Position, ok bool, err error) {
	resp, err := s.cli.Get(ctx, s.truncKey(logID))
	if err != nil {
		return Position{}, false, errors.Wrapf(err, "read truncation point of log %d", logID)
	}
	if len(resp.Kvs) == 0 {
		return Position{}, false, nil
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &p); err != nil {
		return Position{}, false, errors.Wrapf(walerr.ErrCorrupt, "truncation point of log %d: %v", logID, err)
	}
	return p, true, nil
}

// Truncate moves the truncation point up to p. A point at or below the
// current one changes nothing and is not an error. When owner is not nil
// the change is a writer's: the same transaction compares that owner still
// holds the log, and the call fails with ErrFenced, changing nothing, when
// a newer writer took over. A nil owner is an administrator's truncation,
// which any process may make. ErrLogNotFound when the log was deleted.
//
// The caller checks that p does not lie beyond the log's last durable
// entry (see woodpecker.Log.Truncate): durable entries never disappear, so
// that check cannot go stale before this transaction.
func (s *Store) Truncate(ctx context.Context, logID int64, p Position, owner *WriterToken) error {
	key := s.truncKey(logID)
	for {
		resp, err := s.cli.Get(ctx, key)
		if err != nil {
			return errors.Wrapf(err, "truncate log %d", logID)
		}
		var rev int64
		if len(resp.Kvs) == 1 {
			rev = resp.Kvs[0].ModRevision
			var cur Position
			if err := json.Unmarshal(resp.Kvs[0].Value, &cur); err != nil {
				return errors.Wrapf(walerr.ErrCorrupt, "truncation point of log %d: %v", logID, err)
			}
			if !cur.Less(p) {
				// Nothing moves, but a fenced writer still learns that it
				// is one: a zombie must never read success.
				if owner != nil {
					return s.CheckOwner(ctx, *owner)
				}
				return nil
			}
		}
		val, _ := json.Marshal(p)
		cmps := []clientv3.Cmp{
			clientv3.Compare(clientv3.ModRevision(key), "=", rev),
			clientv3.Compare(clientv3.CreateRevision(s.deletedKey(logID)), "=", 0),
		}
		if owner != nil {
			cmps = append(cmps, s.ownerCmp(*owner))
		}
		txn, err := s.cli.Txn(ctx).If(cmps...).Then(clientv3.OpPut(key, string(val))).Else(
			clientv3.OpGet(s.deletedKey(logID), clientv3.WithCountOnly()),
		).Commit()
		if err != nil {
			return errors.Wrapf(err, "truncate log %d", logID)
		}
		if txn.Succeeded {
			return nil
		}
		if txn.Responses[0].GetResponseRange().Count > 0 {
			return errors.Wrapf(walerr.ErrLogNotFound, "truncate log %d: the log was deleted", logID)
		}
		if owner != nil {
			if err := s.CheckOwner(ctx, *owner); err != nil {
				return errors.Wrapf(err, "truncate log %d", logID)
			}
		}
		// Another truncation moved the point meanwhile; compare again.
	}
}

// WatchSegments streams changes of the log's segment keys from revision rev
// on (0: from now). The channel closes when ctx ends.
func (s *Store) WatchSegments(ctx context.Context, logID, rev int64) clientv3.WatchChan {
	// The created notification tells the watcher when the watch is in
	// place: a reader reloads then, so a segment created between its listing
	// and the watch's start is not missed.
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCreatedNotify()}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	return s.cli.Watch(ctx, s.SegmentsPrefix(logID), opts...)
}

// WriterEpoch returns the epoch of the writer that owns the log last; ok is
// false when no writer ever opened it.
func (s *Store) WriterEpoch(ctx context.Context, logID int64) (epoch int64, ok bool, err error) {
	resp, err := s.cli.Get(ctx, s.writerKey(logID))
	if err != nil {
		return 0, false, errors.Wrapf(err, "read writer of log %d", logID)
	}
	if len(resp.Kvs) == 0 {
		return 0, false, nil
	}
	epoch, err = parseWriterValue(resp.Kvs[0].Value)
	if err != nil {
		return 0, false, errors.Wrapf(walerr.ErrCorrupt, "log %d: %v", logID, err)
	}
	return epoch, true, nil
}
