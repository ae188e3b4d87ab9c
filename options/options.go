// Package options defines Woodpecker's typed configuration: what the YAML file in
// package configs describes, with defaults, parsing, validation and environment
// overrides.
//
// The usual sequence is:
//
//	cfg, err := options.LoadWithEnv(path) // defaults, then the file, then the environment, then Validate
//
// or, step by step, Default / Parse / Load, then ApplyEnv, then Validate. Parse and
// Load check syntax, key names, types and enumerated values; Validate checks ranges
// and combinations. Every problem is reported with the key path it concerns
// (for example "storage.endpoint"), and every such error matches ErrInvalidConfig
// with errors.Is.
//
// Sizes are int64 numbers of bytes and durations are time.Duration values; in YAML
// they are written as "4MiB", "64MB" or a plain integer of bytes, and "2ms", "10m",
// "1d12h".
//
// A Config is a plain value, safe to read from several goroutines. A copy made by
// assignment shares the etcd.endpoints slice and the Sources map with the
// original; the functions of this package never modify those in place (they
// replace them), and Clone makes a copy that shares nothing. Mutating a Config
// from several goroutines at once needs the caller's synchronisation. The
// functions of this package keep no state and are safe for concurrent use.
//
// Printing a Config (%v, %s, %#v, String) shows it with secrets redacted; encoders
// that walk the struct themselves (json, zap.Any) do not know that, so give them
// Redacted().
package options

import (
	"time"
)

// Size units, in bytes.
const (
	KiB int64 = 1 << 10
	MiB int64 = 1 << 20
	GiB int64 = 1 << 30
	TiB int64 = 1 << 40
)

// Config is the whole configuration of a Woodpecker client or server process.
//
// The yaml tags give each field's key; a key path joins the keys of the enclosing
// sections with dots, as in "writer.uploadRetry.maxAttempts". Fields of type int64
// are sizes in bytes, fields of type int are counts.
type Config struct {
	Etcd      EtcdConfig      `yaml:"etcd"`
	Storage   StorageConfig   `yaml:"storage"`
	Writer    WriterConfig    `yaml:"writer"`
	Reader    ReaderConfig    `yaml:"reader"`
	Retention RetentionConfig `yaml:"retention"`
	Log       LogConfig       `yaml:"log"`
	Metrics   MetricsConfig   `yaml:"metrics"`
	// Mode is where appends are buffered until they are durable.
	Mode   Mode         `yaml:"mode"`
	Quorum QuorumConfig `yaml:"quorum"`

	// Sources maps key paths to where their value came from: "default",
	// "file:<path>" or "env:<VARIABLE>". Default fills it with "default" for every
	// key; Parse, Load and ApplyEnv record what they set. It is informational (for
	// `config print`) and is not part of the YAML. Treat it as read-only: the
	// functions of this package replace it rather than modify it, so copies of a
	// Config never see each other's changes.
	Sources map[string]string `yaml:"-"`
}

// Mode selects where appends wait until they are durable.
type Mode string

// Modes.
const (
	// ModeMemoryBuffer: the client batches appends in its memory and
	// acknowledges them once they are durable in storage.
	ModeMemoryBuffer Mode = "memoryBuffer"
	// ModeQuorumBuffer: the client sends appends to 3 LogStore servers and
	// acknowledges them once 2 hold them; the LogStores upload to storage.
	ModeQuorumBuffer Mode = "quorumBuffer"
)

func (Mode) allowedValues() []string { return []string{"memoryBuffer", "quorumBuffer"} }

// QuorumConfig configures the QuorumBuffer mode's client.
type QuorumConfig struct {
	// LogStores, when not empty, are the gRPC addresses of the LogStores to
	// place segments on; empty means the LogStores registered in etcd.
	LogStores []string `yaml:"logStores"`
	// CallTimeout bounds each call to a LogStore.
	CallTimeout time.Duration `yaml:"callTimeout"`
	// MaxInflightBlocks is how many blocks a writer keeps in flight to its
	// LogStores at once.
	MaxInflightBlocks int `yaml:"maxInflightBlocks"`
}

// EtcdConfig is the connection to etcd, which holds the metadata.
type EtcdConfig struct {
	// Endpoints are etcd client URLs, "host:port" or "http(s)://host:port".
	Endpoints []string `yaml:"endpoints"`
	// RootPath prefixes every key Woodpecker writes in etcd.
	RootPath string `yaml:"rootPath"`
	// DialTimeout bounds establishing a connection.
	DialTimeout time.Duration `yaml:"dialTimeout"`
	// RequestTimeout bounds one etcd request.
	RequestTimeout time.Duration `yaml:"requestTimeout"`
	// Username enables etcd authentication when not empty.
	Username string `yaml:"username"`
	// Password goes with Username. Secret: Redacted hides it.
	Password string  `yaml:"password" secret:"true"`
	TLS      EtcdTLS `yaml:"tls"`
}

// EtcdTLS is the TLS setup of the etcd connection. Paths name PEM files; they are
// not opened by this package.
type EtcdTLS struct {
	// Enabled turns TLS on; the other fields may only be set when it is true.
	Enabled bool `yaml:"enabled"`
	// CAFile is the CA bundle that verifies the server; empty means the system roots.
	CAFile string `yaml:"caFile"`
	// CertFile and KeyFile are the client certificate and key for mutual TLS; both
	// or neither.
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
	// ServerName overrides the name verified in the server certificate.
	ServerName string `yaml:"serverName"`
	// InsecureSkipVerify disables verification of the server certificate (tests only).
	InsecureSkipVerify bool `yaml:"insecureSkipVerify"`
}

// StorageType selects the storage backend.
type StorageType string

// Storage backends.
const (
	// StorageMinIO is any S3-compatible store, reached through minio-go.
	StorageMinIO StorageType = "minio"
	// StorageS3 is AWS S3 (or an S3 API such as MinIO's), reached through aws-sdk-go-v2.
	StorageS3 StorageType = "s3"
	// StorageLocal is a directory on a local filesystem.
	StorageLocal StorageType = "local"
)

func (StorageType) allowedValues() []string { return []string{"minio", "s3", "local"} }

// StorageConfig is where log data lives.
type StorageConfig struct {
	// Type selects the backend.
	Type StorageType `yaml:"type"`
	// Endpoint is host[:port] of the object store, without a scheme.
	Endpoint string `yaml:"endpoint"`
	// Bucket holds the data (object stores only).
	Bucket string `yaml:"bucket"`
	// RootPath is the key prefix inside the bucket, or the directory for local.
	RootPath string `yaml:"rootPath"`
	// Region of the bucket.
	Region string `yaml:"region"`
	// AccessKey and SecretKey are the credentials; both or neither. SecretKey is
	// secret: Redacted hides it.
	AccessKey string `yaml:"accessKey"`
	SecretKey string `yaml:"secretKey" secret:"true"`
	// UseSSL selects https.
	UseSSL bool       `yaml:"useSSL"`
	TLS    StorageTLS `yaml:"tls"`
	// CreateBucket creates a missing bucket at start-up.
	CreateBucket bool `yaml:"createBucket"`
	// RequestTimeout bounds one storage request.
	RequestTimeout time.Duration `yaml:"requestTimeout"`
	Fencing        Fencing       `yaml:"fencing"`
}

// StorageTLS is the TLS setup of the object store connection (only with UseSSL).
type StorageTLS struct {
	// CAFile is the CA bundle that verifies the store; empty means the system roots.
	CAFile string `yaml:"caFile"`
	// InsecureSkipVerify disables verification of the store's certificate (tests only).
	InsecureSkipVerify bool `yaml:"insecureSkipVerify"`
}

// ConditionalWriteMode says what to do with a store that ignores create-only
// (If-None-Match: *) writes.
type ConditionalWriteMode string

// Conditional write modes.
const (
	// ConditionalWriteRequired refuses to open a writer on such a store.
	ConditionalWriteRequired ConditionalWriteMode = "required"
	// ConditionalWriteAllowEtcdOnly opens it anyway, fenced by etcd epochs alone.
	ConditionalWriteAllowEtcdOnly ConditionalWriteMode = "allowEtcdOnly"
)

func (ConditionalWriteMode) allowedValues() []string {
	return []string{"required", "allowEtcdOnly"}
}

// Fencing is the storage-level fencing policy.
type Fencing struct {
	// ConditionalWrite is the policy for stores without create-only writes.
	ConditionalWrite ConditionalWriteMode `yaml:"conditionalWrite"`
}

// Compression is a block payload compression.
type Compression string

// Compressions.
const (
	CompressionNone Compression = "none"
	CompressionZstd Compression = "zstd"
)

func (Compression) allowedValues() []string { return []string{"none", "zstd"} }

// WriterConfig controls batching, uploads and segment rolling.
type WriterConfig struct {
	// MaxEntryBytes is the largest payload of one entry, at most
	// MaxEntryBytesLimit.
	MaxEntryBytes int64 `yaml:"maxEntryBytes"`
	// MaxBlockBytes is the size at which a block is cut. Validate checks
	// that the largest block it allows fits MaxBlockEntriesBytes.
	MaxBlockBytes int64 `yaml:"maxBlockBytes"`
	// FlushDelay is the longest an entry waits for others to join its block
	// (object storage).
	FlushDelay time.Duration `yaml:"flushDelay"`
	// MaxInflightUploads is the number of concurrent block uploads per writer.
	MaxInflightUploads int `yaml:"maxInflightUploads"`
	// MemoryBudgetBytes bounds the bytes of entries appended but not yet acknowledged.
	MemoryBudgetBytes int64 `yaml:"memoryBudgetBytes"`
	// ClientMemoryBudgetBytes bounds the same for all the writers of one
	// client together, however many logs it writes.
	ClientMemoryBudgetBytes int64 `yaml:"clientMemoryBudgetBytes"`
	// Compression of block payloads.
	Compression Compression `yaml:"compression"`
	UploadRetry UploadRetry `yaml:"uploadRetry"`
	// RollMaxBytes, RollMaxAge and RollMaxBlocks seal a segment and start a new one
	// when any is reached.
	RollMaxBytes  int64         `yaml:"rollMaxBytes"`
	RollMaxAge    time.Duration `yaml:"rollMaxAge"`
	RollMaxBlocks int           `yaml:"rollMaxBlocks"`
	// LocalFlushDelay is FlushDelay for the local backend.
	LocalFlushDelay time.Duration `yaml:"localFlushDelay"`
	// BatchWindow > 0 packs the blocks of every log of the process into
	// shared objects, one upload per window (docs/shared-objects.md); 0
	// keeps one object per block. In QuorumBuffer mode it places segments
	// in the shared objects the LogStores write (their own window).
	BatchWindow time.Duration `yaml:"batchWindow"`
	// ObjectBytes closes a shared object once it holds this many bytes.
	ObjectBytes int64 `yaml:"objectBytes"`
	// MaxInflightObjects bounds the shared objects the process uploads at
	// once, whatever the number of logs.
	MaxInflightObjects int `yaml:"maxInflightObjects"`
}

// UploadRetry is the retry policy of one block upload: exponential backoff from
// InitialBackoff, doubling up to MaxBackoff, at most MaxAttempts attempts and
// TotalTimeout in all.
type UploadRetry struct {
	MaxAttempts    int           `yaml:"maxAttempts"`
	InitialBackoff time.Duration `yaml:"initialBackoff"`
	MaxBackoff     time.Duration `yaml:"maxBackoff"`
	TotalTimeout   time.Duration `yaml:"totalTimeout"`
}

// ReaderConfig controls prefetch and tail following.
type ReaderConfig struct {
	// PrefetchBlocks is the number of blocks read ahead in parallel.
	PrefetchBlocks int `yaml:"prefetchBlocks"`
	// MaxBufferBytes bounds the bytes of prefetched blocks a reader holds.
	MaxBufferBytes int64 `yaml:"maxBufferBytes"`
	// TailBackoffMin and TailBackoffMax bound the wait between listings when
	// following a tail written by another process.
	TailBackoffMin time.Duration `yaml:"tailBackoffMin"`
	TailBackoffMax time.Duration `yaml:"tailBackoffMax"`
}

// RetentionConfig controls garbage collection and compaction.
type RetentionConfig struct {
	// TTL is how long data below a truncation point is kept (default for logs).
	TTL time.Duration `yaml:"ttl"`
	// GCInterval is the time between two garbage-collection runs.
	GCInterval time.Duration `yaml:"gcInterval"`
	// GCEnabled runs garbage collection in this process.
	GCEnabled bool `yaml:"gcEnabled"`
	// OrphanGracePeriod is the age an unreferenced object must reach before deletion.
	OrphanGracePeriod time.Duration `yaml:"orphanGracePeriod"`
	Compaction        Compaction    `yaml:"compaction"`
	// ReaderLeaseTTL is the TTL of the etcd lease under which readers publish their
	// position; a whole number of seconds.
	ReaderLeaseTTL time.Duration `yaml:"readerLeaseTTL"`
}

// Compaction controls the merging of small block objects of sealed segments.
type Compaction struct {
	// Enabled turns compaction on.
	Enabled bool `yaml:"enabled"`
	// TargetObjectBytes is the size of the objects compaction writes.
	TargetObjectBytes int64 `yaml:"targetObjectBytes"`
	// MinBlocks is the number of small blocks a segment needs to be compacted.
	MinBlocks int `yaml:"minBlocks"`
	// OldBlocksGracePeriod is how long replaced blocks are kept after the switch.
	OldBlocksGracePeriod time.Duration `yaml:"oldBlocksGracePeriod"`
}

// LogLevel is the lowest level of diagnostic logging written.
type LogLevel string

// Log levels.
const (
	LogDebug LogLevel = "debug"
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

func (LogLevel) allowedValues() []string { return []string{"debug", "info", "warn", "error"} }

// LogFormat is the output format of diagnostic logging.
type LogFormat string

// Log formats.
const (
	LogConsole LogFormat = "console"
	LogJSON    LogFormat = "json"
)

func (LogFormat) allowedValues() []string { return []string{"console", "json"} }

// LogConfig controls Woodpecker's own diagnostic logging.
type LogConfig struct {
	Level  LogLevel  `yaml:"level"`
	Format LogFormat `yaml:"format"`
}

// MetricsConfig controls the Prometheus metrics endpoint.
type MetricsConfig struct {
	// Addr is host:port of the /metrics server; empty means none.
	Addr string `yaml:"addr"`
}

// Default returns the default configuration. It equals configs/woodpecker.yaml
// (a test proves it). Its Sources map says "default" for every key. Each call
// returns a new value that the caller owns.
func Default() Config {
	c := Config{
		Mode: ModeMemoryBuffer,
		Quorum: QuorumConfig{
			LogStores:         []string{},
			CallTimeout:       5 * time.Second,
			MaxInflightBlocks: 16,
		},
		Etcd: EtcdConfig{
			Endpoints:      []string{"localhost:2379"},
			RootPath:       "woodpecker",
			DialTimeout:    5 * time.Second,
			RequestTimeout: 10 * time.Second,
		},
		Storage: StorageConfig{
			Type:           StorageMinIO,
			Endpoint:       "localhost:9000",
			Bucket:         "woodpecker",
			RootPath:       "woodpecker",
			Region:         "us-east-1",
			RequestTimeout: 30 * time.Second,
			Fencing:        Fencing{ConditionalWrite: ConditionalWriteRequired},
		},
		Writer: WriterConfig{
			MaxEntryBytes:           16 * MiB,
			MaxBlockBytes:           4 * MiB,
			FlushDelay:              2 * time.Millisecond,
			MaxInflightUploads:      4,
			MemoryBudgetBytes:       64 * MiB,
			ClientMemoryBudgetBytes: 256 * MiB,
			Compression:             CompressionNone,
			UploadRetry: UploadRetry{
				MaxAttempts:    5,
				InitialBackoff: 50 * time.Millisecond,
				MaxBackoff:     2 * time.Second,
				TotalTimeout:   time.Minute,
			},
			RollMaxBytes:       256 * MiB,
			RollMaxAge:         10 * time.Minute,
			RollMaxBlocks:      1000,
			LocalFlushDelay:    0,
			BatchWindow:        0,
			ObjectBytes:        8 * MiB,
			MaxInflightObjects: 4,
		},
		Reader: ReaderConfig{
			PrefetchBlocks: 4,
			MaxBufferBytes: 32 * MiB,
			TailBackoffMin: 5 * time.Millisecond,
			TailBackoffMax: 200 * time.Millisecond,
		},
		Retention: RetentionConfig{
			TTL:               72 * time.Hour,
			GCInterval:        5 * time.Minute,
			GCEnabled:         false,
			OrphanGracePeriod: time.Hour,
			Compaction: Compaction{
				Enabled:              false,
				TargetObjectBytes:    32 * MiB,
				MinBlocks:            8,
				OldBlocksGracePeriod: 10 * time.Minute,
			},
			ReaderLeaseTTL: 30 * time.Second,
		},
		Log: LogConfig{
			Level:  LogInfo,
			Format: LogConsole,
		},
		Metrics: MetricsConfig{},
	}
	sources := make(map[string]string)
	for _, k := range Keys() {
		sources[k] = SourceDefault
	}
	c.Sources = sources
	return c
}

// SourceDefault is the Sources value of a key that nothing overrode.
const SourceDefault = "default"

// Source returns where the value of the key path came from ("default",
// "file:<path>" or "env:<VARIABLE>"); "default" when Sources has no entry.
func (c Config) Source(key string) string {
	if s, ok := c.Sources[key]; ok {
		return s
	}
	return SourceDefault
}
