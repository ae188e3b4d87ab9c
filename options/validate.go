package options

import (
	"fmt"
	"net"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate checks ranges and combinations of values and reports every problem at
// once, each naming its key path, in a *ConfigError that matches
// ErrInvalidConfig; nil means the configuration is usable. It reads no file and
// contacts no server: whether a TLS file exists or an endpoint answers is for the
// code that uses them. Keys that a storage type ignores (the bucket of a local
// store, for example) are not checked for it.
func (c Config) Validate() error {
	var v validator
	v.enums(reflect.ValueOf(c), "")
	v.etcd(c.Etcd)
	v.storage(c.Storage)
	v.writer(c.Writer)
	v.reader(c.Reader, c.Writer)
	v.retention(c.Retention, c.Writer)
	v.quorum(c)
	if c.Metrics.Addr != "" {
		if msg := checkHostPort(c.Metrics.Addr, true, true); msg != "" {
			v.add("metrics.addr", "%s", msg)
		}
	}
	return v.ps.err("")
}

// quorum checks the QuorumBuffer client's keys.
func (v *validator) quorum(c Config) {
	q := c.Quorum
	if q.CallTimeout <= 0 {
		v.add("quorum.callTimeout", "must be > 0, got %s", q.CallTimeout)
	}
	if q.MaxInflightBlocks < 1 || q.MaxInflightBlocks > 1024 {
		v.add("quorum.maxInflightBlocks", "must be 1..1024, got %d", q.MaxInflightBlocks)
	}
	for i, a := range q.LogStores {
		if msg := checkHostPort(a, false, false); msg != "" {
			v.add(fmt.Sprintf("quorum.logStores[%d]", i), "%s", msg)
		}
	}
	if n := len(q.LogStores); n > 0 && n < 3 {
		v.add("quorum.logStores", "lists %d LogStores; a quorum segment needs 3 (or list none to use the etcd registry)", n)
	}
	if c.Mode == ModeQuorumBuffer && c.Storage.Type == StorageLocal {
		v.add("mode", "quorumBuffer uploads from LogStore servers, which need object storage; storage.type local is for one process (use minio or s3)")
	}
}

type validator struct {
	ps problems
}

func (v *validator) add(key, format string, args ...any) {
	v.ps.add(key, 0, format, args...)
}

// enums checks every enumerated field, wherever it is.
func (v *validator) enums(val reflect.Value, path string) {
	for _, f := range fieldsOf(val.Type()) {
		fv := val.Field(f.index)
		key := joinKey(path, f.key)
		if fv.Kind() == reflect.Struct {
			v.enums(fv, key)
			continue
		}
		e, ok := fv.Interface().(enum)
		if !ok {
			continue
		}
		if !slices.Contains(e.allowedValues(), fv.String()) {
			v.add(key, "unknown value %q (allowed: %s)", fv.String(), strings.Join(e.allowedValues(), ", "))
		}
	}
}

func (v *validator) positive(key string, d time.Duration) {
	if d <= 0 {
		v.add(key, "must be a positive duration, got %s", FormatDuration(d))
	}
}

func (v *validator) nonNegative(key string, d time.Duration) {
	if d < 0 {
		v.add(key, "must not be negative, got %s", FormatDuration(d))
	}
}

func (v *validator) positiveSize(key string, n int64) {
	if n <= 0 {
		v.add(key, "must be a positive size, got %s", FormatSize(n))
	}
}

func (v *validator) atLeast(key string, n, least int) {
	if n < least {
		v.add(key, "must be at least %d, got %d", least, n)
	}
}

// sizeAtMost reports key when n exceeds the limit held by limitKey; sizes that are
// not positive are left to positiveSize.
func (v *validator) sizeAtMost(key string, n int64, limitKey string, limit int64) {
	if n > 0 && limit > 0 && n > limit {
		v.add(key, "%s is larger than %s (%s); lower it or raise %s", FormatSize(n), limitKey, FormatSize(limit), limitKey)
	}
}

func (v *validator) etcd(e EtcdConfig) {
	if len(e.Endpoints) == 0 {
		v.add("etcd.endpoints", "at least one endpoint is required (host:port)")
	}
	for i, ep := range e.Endpoints {
		key := "etcd.endpoints[" + strconv.Itoa(i) + "]"
		scheme, msg := checkEtcdEndpoint(ep)
		switch {
		case msg != "":
			v.add(key, "%s", msg)
		case scheme == "https" && !e.TLS.Enabled:
			v.add(key, "%q uses https but etcd.tls.enabled is false; enable TLS or use http", RedactEndpoint(ep))
		case scheme == "http" && e.TLS.Enabled:
			v.add(key, "%q uses http but etcd.tls.enabled is true; use https or host:port", RedactEndpoint(ep))
		}
	}
	if msg := checkPrefix(e.RootPath); msg != "" {
		v.add("etcd.rootPath", "%s", msg)
	} else if e.RootPath == "" {
		v.add("etcd.rootPath", "must not be empty: it prefixes every key Woodpecker writes in etcd")
	}
	v.positive("etcd.dialTimeout", e.DialTimeout)
	v.positive("etcd.requestTimeout", e.RequestTimeout)
	if e.Password != "" && e.Username == "" {
		v.add("etcd.password", "is set but etcd.username is empty; set both or neither")
	}
	t := e.TLS
	if !t.Enabled {
		for _, s := range []struct {
			key string
			set bool
		}{
			{"etcd.tls.caFile", t.CAFile != ""},
			{"etcd.tls.certFile", t.CertFile != ""},
			{"etcd.tls.keyFile", t.KeyFile != ""},
			{"etcd.tls.serverName", t.ServerName != ""},
			{"etcd.tls.insecureSkipVerify", t.InsecureSkipVerify},
		} {
			if s.set {
				v.add(s.key, "is set but etcd.tls.enabled is false; enable TLS or remove it")
			}
		}
		return
	}
	if t.CertFile != "" && t.KeyFile == "" {
		v.add("etcd.tls.keyFile", "is required when etcd.tls.certFile is set (client certificate and key go together)")
	}
	if t.KeyFile != "" && t.CertFile == "" {
		v.add("etcd.tls.certFile", "is required when etcd.tls.keyFile is set (client certificate and key go together)")
	}
}

func (v *validator) storage(s StorageConfig) {
	v.positive("storage.requestTimeout", s.RequestTimeout)
	switch s.Type {
	case StorageLocal:
		if strings.TrimSpace(s.RootPath) == "" {
			v.add("storage.rootPath", "is required when storage.type is local: it is the directory that holds the data")
		}
		return
	case StorageMinIO, StorageS3:
	default:
		return // reported by enums
	}
	switch {
	case s.Endpoint == "" && s.Type == StorageMinIO:
		v.add("storage.endpoint", "is required when storage.type is minio (host:port of the server)")
	case s.Endpoint != "":
		if msg := checkStorageEndpoint(s.Endpoint); msg != "" {
			v.add("storage.endpoint", "%s", msg)
		}
	}
	switch {
	case s.Bucket == "":
		v.add("storage.bucket", "is required when storage.type is %s", s.Type)
	case !validBucket(s.Bucket):
		v.add("storage.bucket", "%q is not a valid bucket name: 3-63 characters, lower-case letters, digits, dots and hyphens, beginning and ending with a letter or digit", s.Bucket)
	}
	if msg := checkPrefix(s.RootPath); msg != "" {
		v.add("storage.rootPath", "%s", msg)
	}
	if s.Type == StorageS3 && s.Region == "" {
		v.add("storage.region", "is required when storage.type is s3 (for example us-east-1)")
	}
	if s.AccessKey != "" && s.SecretKey == "" {
		v.add("storage.secretKey", "is required when storage.accessKey is set (set both, or neither for default credentials)")
	}
	if s.SecretKey != "" && s.AccessKey == "" {
		v.add("storage.accessKey", "is required when storage.secretKey is set (set both, or neither for default credentials)")
	}
	if !s.UseSSL {
		if s.TLS.CAFile != "" {
			v.add("storage.tls.caFile", "is set but storage.useSSL is false; set useSSL: true or remove it")
		}
		if s.TLS.InsecureSkipVerify {
			v.add("storage.tls.insecureSkipVerify", "is set but storage.useSSL is false; set useSSL: true or remove it")
		}
	}
}

func (v *validator) writer(w WriterConfig) {
	v.positiveSize("writer.maxEntryBytes", w.MaxEntryBytes)
	v.positiveSize("writer.maxBlockBytes", w.MaxBlockBytes)
	v.positiveSize("writer.memoryBudgetBytes", w.MemoryBudgetBytes)
	v.positiveSize("writer.clientMemoryBudgetBytes", w.ClientMemoryBudgetBytes)
	v.sizeAtMost("writer.maxEntryBytes", w.MaxEntryBytes, "writer.memoryBudgetBytes", w.MemoryBudgetBytes)
	v.sizeAtMost("writer.maxBlockBytes", w.MaxBlockBytes, "writer.memoryBudgetBytes", w.MemoryBudgetBytes)
	v.nonNegative("writer.flushDelay", w.FlushDelay)
	v.atLeast("writer.maxInflightUploads", w.MaxInflightUploads, 1)
	r := w.UploadRetry
	v.atLeast("writer.uploadRetry.maxAttempts", r.MaxAttempts, 1)
	v.positive("writer.uploadRetry.initialBackoff", r.InitialBackoff)
	v.positive("writer.uploadRetry.maxBackoff", r.MaxBackoff)
	if r.InitialBackoff > 0 && r.MaxBackoff > 0 && r.MaxBackoff < r.InitialBackoff {
		v.add("writer.uploadRetry.maxBackoff", "%s is shorter than writer.uploadRetry.initialBackoff (%s)",
			FormatDuration(r.MaxBackoff), FormatDuration(r.InitialBackoff))
	}
	v.positive("writer.uploadRetry.totalTimeout", r.TotalTimeout)
	v.positiveSize("writer.rollMaxBytes", w.RollMaxBytes)
	v.positive("writer.rollMaxAge", w.RollMaxAge)
	v.atLeast("writer.rollMaxBlocks", w.RollMaxBlocks, 1)
	v.nonNegative("writer.localFlushDelay", w.LocalFlushDelay)
	v.nonNegative("writer.batchWindow", w.BatchWindow)
	v.positiveSize("writer.objectBytes", w.ObjectBytes)
	v.atLeast("writer.maxInflightObjects", w.MaxInflightObjects, 1)
	v.blockFits(w)
}

// MaxBlockEntriesBytes is the block format's limit on the entries section of
// one block (segment.MaxBlockRawLen): every entry's bytes plus its length,
// stored in 1 to 4 bytes.
const MaxBlockEntriesBytes = 256 * MiB

// MaxEntryBytesLimit is the largest writer.maxEntryBytes: an entry this
// large and its 4-byte length fill a block.
const MaxEntryBytesLimit = MaxBlockEntriesBytes - 4

// blockFits checks that every block the writer can cut fits the block
// format. A block is cut once its entries reach writer.maxBlockBytes, so it
// holds less than maxBlockBytes of entries before its last one, which may
// be as large as writer.maxEntryBytes. Each entry also stores its length:
// for one-byte entries that doubles their size. So the largest block holds
// 2 x (maxBlockBytes - 1) bytes plus one largest entry and its length.
func (v *validator) blockFits(w WriterConfig) {
	e, b := w.MaxEntryBytes, w.MaxBlockBytes
	if e <= 0 || b <= 0 {
		return // reported above
	}
	if e > MaxEntryBytesLimit {
		v.add("writer.maxEntryBytes", "%s is above the largest entry a block can hold, %s bytes (256MiB less the entry's 4-byte length); lower it",
			FormatSize(e), strconv.FormatInt(MaxEntryBytesLimit, 10))
		return
	}
	room := MaxBlockEntriesBytes - e - uvarintLen(e) // for the entries before the largest one
	if 2*(b-1) > room {
		limit := room/2 + 1
		v.add("writer.maxBlockBytes", "%s is too large with writer.maxEntryBytes at %s: a block could hold 2 x maxBlockBytes (tiny entries store a length byte each) plus one largest entry, above the block format's 256MiB; lower it to at most %s bytes, or lower writer.maxEntryBytes",
			FormatSize(b), FormatSize(e), strconv.FormatInt(limit, 10))
	}
}

// uvarintLen is the length of n's uvarint encoding, as a block stores an
// entry's length.
func uvarintLen(n int64) int64 {
	l := int64(1)
	for ; n >= 0x80; n >>= 7 {
		l++
	}
	return l
}

func (v *validator) reader(r ReaderConfig, w WriterConfig) {
	v.atLeast("reader.prefetchBlocks", r.PrefetchBlocks, 1)
	v.positiveSize("reader.maxBufferBytes", r.MaxBufferBytes)
	if r.MaxBufferBytes > 0 {
		largest, largestKey := w.MaxBlockBytes, "writer.maxBlockBytes"
		if w.MaxEntryBytes > largest {
			largest, largestKey = w.MaxEntryBytes, "writer.maxEntryBytes"
		}
		if largest > r.MaxBufferBytes {
			v.add("reader.maxBufferBytes", "%s is smaller than %s (%s), so a block may not fit; raise it",
				FormatSize(r.MaxBufferBytes), largestKey, FormatSize(largest))
		}
	}
	v.positive("reader.tailBackoffMin", r.TailBackoffMin)
	v.positive("reader.tailBackoffMax", r.TailBackoffMax)
	if r.TailBackoffMin > 0 && r.TailBackoffMax > 0 && r.TailBackoffMax < r.TailBackoffMin {
		v.add("reader.tailBackoffMax", "%s is shorter than reader.tailBackoffMin (%s)",
			FormatDuration(r.TailBackoffMax), FormatDuration(r.TailBackoffMin))
	}
}

func (v *validator) retention(r RetentionConfig, w WriterConfig) {
	v.nonNegative("retention.ttl", r.TTL)
	v.positive("retention.gcInterval", r.GCInterval)
	v.positive("retention.orphanGracePeriod", r.OrphanGracePeriod)
	if t := w.UploadRetry.TotalTimeout; r.OrphanGracePeriod > 0 && t > 0 && r.OrphanGracePeriod < t {
		v.add("retention.orphanGracePeriod", "%s is shorter than writer.uploadRetry.totalTimeout (%s): an upload still in progress could be deleted as an orphan",
			FormatDuration(r.OrphanGracePeriod), FormatDuration(t))
	}
	c := r.Compaction
	v.positiveSize("retention.compaction.targetObjectBytes", c.TargetObjectBytes)
	if c.TargetObjectBytes > 0 && w.MaxBlockBytes > 0 && c.TargetObjectBytes < w.MaxBlockBytes {
		v.add("retention.compaction.targetObjectBytes", "%s is smaller than writer.maxBlockBytes (%s): compaction would have nothing to merge",
			FormatSize(c.TargetObjectBytes), FormatSize(w.MaxBlockBytes))
	}
	v.atLeast("retention.compaction.minBlocks", c.MinBlocks, 2)
	v.positive("retention.compaction.oldBlocksGracePeriod", c.OldBlocksGracePeriod)
	switch {
	case r.ReaderLeaseTTL < time.Second:
		v.add("retention.readerLeaseTTL", "must be at least 1s, got %s", FormatDuration(r.ReaderLeaseTTL))
	case r.ReaderLeaseTTL%time.Second != 0:
		v.add("retention.readerLeaseTTL", "%s is not a whole number of seconds (etcd leases are in seconds)", FormatDuration(r.ReaderLeaseTTL))
	}
}

// checkEtcdEndpoint checks "host:port" or "scheme://host:port" and returns the
// scheme ("" when none) and a message when malformed.
func checkEtcdEndpoint(ep string) (scheme, msg string) {
	rest := ep
	quoted := strconv.Quote(RedactEndpoint(ep))
	if s, r, ok := strings.Cut(ep, "://"); ok {
		scheme, rest = s, r
		switch scheme {
		case "http", "https":
		case "unix", "unixs":
			if rest == "" {
				return scheme, quoted + " names no socket"
			}
			return scheme, ""
		default:
			return scheme, quoted + " has an unknown scheme " + strconv.Quote(scheme) + " (use host:port, http://, https://, unix://)"
		}
	}
	if _, _, ok := userinfo(ep); ok {
		return scheme, quoted + " holds credentials; give them as etcd.username and etcd.password"
	}
	if m := checkHostPort(rest, false, false); m != "" {
		return scheme, quoted + ": " + m
	}
	return scheme, ""
}

// userinfo returns the "user:password@" part of an endpoint (with or
// without a scheme) as its start and end offsets, and whether it has one.
func userinfo(ep string) (start, end int, ok bool) {
	if _, r, found := strings.Cut(ep, "://"); found {
		start = len(ep) - len(r)
	}
	authority := ep[start:]
	if i := strings.IndexAny(authority, "/?#"); i >= 0 {
		authority = authority[:i]
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return 0, 0, false
	}
	return start, start + at + 1, true
}

// RedactEndpoint returns ep with the password of a "user:password@" part
// replaced by RedactedValue, as Redacted shows secrets, for anything printed
// or logged; other endpoints are returned unchanged.
func RedactEndpoint(ep string) string {
	start, end, ok := userinfo(ep)
	if !ok {
		return ep
	}
	user, _, hasPassword := strings.Cut(ep[start:end-1], ":")
	if !hasPassword {
		return ep
	}
	return ep[:start] + user + ":" + RedactedValue + ep[end-1:]
}

// checkStorageEndpoint checks host[:port] without a scheme or path.
func checkStorageEndpoint(ep string) string {
	quoted := strconv.Quote(RedactEndpoint(ep))
	if _, _, ok := userinfo(ep); ok {
		return quoted + " holds credentials; give them as storage.accessKey and storage.secretKey, and the endpoint as host[:port]"
	}
	if strings.Contains(ep, "://") {
		return quoted + " must be host[:port] without a scheme (storage.useSSL selects https)"
	}
	if strings.Contains(ep, "/") {
		return quoted + " must be host[:port] without a path"
	}
	if !strings.Contains(ep, ":") {
		if strings.TrimSpace(ep) != ep || ep == "" {
			return quoted + " is not a host name"
		}
		return ""
	}
	if m := checkHostPort(ep, false, false); m != "" {
		return quoted + ": " + m
	}
	return ""
}

// checkHostPort checks "host:port". emptyHost allows ":port"; zeroPort allows 0.
func checkHostPort(hp string, emptyHost, zeroPort bool) string {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return "not host:port (" + strings.TrimPrefix(err.Error(), "address "+hp+": ") + ")"
	}
	if host == "" && !emptyHost {
		return "the host is missing"
	}
	if strings.ContainsAny(host, " \t/") {
		return "the host " + strconv.Quote(host) + " is not a host name"
	}
	n, err := strconv.Atoi(port)
	least := 1
	if zeroPort {
		least = 0
	}
	if err != nil || n < least || n > 65535 {
		return "the port " + strconv.Quote(port) + " is not a port number"
	}
	return ""
}

// checkPrefix checks a key prefix: no leading or trailing "/", no empty or dot
// segment, no white space. The empty prefix passes.
func checkPrefix(p string) string {
	if p == "" {
		return ""
	}
	if strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return strconv.Quote(p) + " must not begin or end with \"/\""
	}
	if strings.ContainsAny(p, " \t\r\n") {
		return strconv.Quote(p) + " must not contain white space"
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return strconv.Quote(p) + " has an empty, \".\" or \"..\" segment"
		}
	}
	return ""
}

var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// validBucket applies the S3 bucket naming rules.
func validBucket(b string) bool {
	return bucketName.MatchString(b) && !strings.Contains(b, "..") && net.ParseIP(b) == nil
}
