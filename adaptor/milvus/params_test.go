package milvus

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/milvus-io/milvus/pkg/v2/streaming/util/message"
	mwal "github.com/milvus-io/milvus/pkg/v2/streaming/walimpls"
	"github.com/milvus-io/milvus/pkg/v2/streaming/walimpls/registry"
	"github.com/milvus-io/milvus/pkg/v2/util/paramtable"

	"github.com/woodpecker-wal/woodpecker/adaptor"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/s3store"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumtest"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// setParams saves Milvus parameters for the test and resets them at
// cleanup. Parameters are process-wide: tests that set them do not run in
// parallel.
func setParams(t *testing.T, kv map[string]string) {
	t.Helper()
	p := paramtable.Get()
	for k, v := range kv {
		if err := p.Save(k, v); err != nil {
			t.Fatalf("paramtable Save(%s): %v", k, err)
		}
		t.Cleanup(func() { _ = p.Reset(k) })
	}
}

// backend sets Milvus's parameters so that the registered builder uses one
// storage, with the shared test etcd under a fresh root path.
type backend struct {
	name   string
	params func(t *testing.T) map[string]string
	// tweak, when set, adjusts the configuration ConfigFromParams derives
	// for what Milvus's parameters cannot say (see builder).
	tweak func(cfg *options.Config)
	// messages is how many messages per term the suites append to each
	// channel; 0 means 1000.
	messages int
}

// perTerm returns b.messages, or 1000.
func (b backend) perTerm() int {
	if b.messages > 0 {
		return b.messages
	}
	return 1000
}

// builder returns the builder the tests use once b's parameters are set:
// the one registered in Milvus's registry, or, when b has a tweak, a
// Builder on the configuration ConfigFromParams derives from the same
// parameters, tweaked, on the test's etcd client.
func (b backend) builder(t *testing.T) mwal.OpenerBuilderImpls {
	t.Helper()
	if b.tweak == nil {
		return registry.MustGetBuilder(message.WALNameWoodpecker)
	}
	cfg, err := ConfigFromParams(paramtable.Get())
	if err != nil {
		t.Fatal(err)
	}
	b.tweak(&cfg)
	return NewBuilder(adaptor.NewBuilder(cfg, woodpecker.WithEtcdClient(testenv.Etcd(t))))
}

func etcdParams(t *testing.T) map[string]string {
	return map[string]string{
		"etcd.endpoints": strings.Join(testenv.EtcdEndpoints(t), ","),
		"etcd.rootPath":  testenv.UniquePrefix(t),
	}
}

// minioParams are Milvus's parameters for a fresh bucket and root on the
// test MinIO, with woodpecker.storage.type set to storageType.
func minioParams(t *testing.T, s3 testenv.S3, storageType, bucket, root string) map[string]string {
	t.Helper()
	host, port, err := net.SplitHostPort(s3.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	kv := etcdParams(t)
	for k, v := range map[string]string{
		"woodpecker.storage.type": storageType,
		"minio.address":           host,
		"minio.port":              port,
		"minio.bucketName":        bucket,
		"minio.rootPath":          root,
		"minio.accessKeyID":       s3.AccessKey,
		"minio.secretAccessKey":   s3.SecretKey,
		"minio.useSSL":            map[bool]string{true: "true", false: "false"}[s3.Secure],
		"minio.region":            s3.Region,
	} {
		kv[k] = v
	}
	return kv
}

func minioBackendParams(t *testing.T) map[string]string {
	s3 := testenv.MinIO(t)
	return minioParams(t, s3, "minio", testenv.NewBucket(t, s3), testenv.UniquePrefix(t))
}

// serviceParams are the parameters of QuorumBuffer on 3 in-process
// LogStores registered in etcd under the root the client derives,
// uploading to MinIO; with shared, they write shared objects.
func serviceParams(t *testing.T, shared bool) map[string]string {
	s3 := testenv.MinIO(t)
	bucket, root := testenv.NewBucket(t, s3), testenv.UniquePrefix(t)
	kv := minioParams(t, s3, "service", bucket, root)
	store, err := s3store.Open(context.Background(), s3store.Config{Endpoint: s3.Endpoint, AccessKey: s3.AccessKey,
		SecretKey: s3.SecretKey, Bucket: bucket, Region: s3.Region, Secure: s3.Secure, RootPath: joinPrefix(root, KeySuffix)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	etcdRoot := joinPrefix(kv["etcd.rootPath"], KeySuffix)
	var cluster *quorumtest.Cluster
	if shared {
		cluster = quorumtest.StartShared(t, testenv.Etcd(t), etcdRoot, 5*time.Millisecond, 3, store, "", 256<<20)
	} else {
		cluster = quorumtest.Start(t, testenv.Etcd(t), 3, store, "", 256<<20)
	}
	cluster.Register(t, testenv.Etcd(t), etcdRoot)
	return kv
}

var backends = []backend{
	{name: "minio", params: minioBackendParams},
	{name: "localfs", params: func(t *testing.T) map[string]string {
		kv := etcdParams(t)
		kv["woodpecker.storage.type"] = "local"
		kv["woodpecker.storage.rootPath"] = t.TempDir()
		return kv
	}},
	// QuorumBuffer ("service"): 3 in-process LogStores registered in etcd
	// under the root the client derives, uploading to MinIO.
	{name: "service", params: func(t *testing.T) map[string]string { return serviceParams(t, false) }},
	// QuorumBuffer whose LogStores write shared objects: as "shared", the
	// builder is made with writer.batchWindow set.
	{name: "service-shared", params: func(t *testing.T) map[string]string { return serviceParams(t, true) },
		tweak: func(cfg *options.Config) { cfg.Writer.BatchWindow = 5 * time.Millisecond }},
	// MinIO with shared objects (docs/shared-objects.md): Milvus has no
	// parameter for writer.batchWindow, so the builder is made from the
	// configuration of the minio parameters with the window set. Each
	// synchronous append waits for the window, a PUT and an etcd
	// transaction, so the terms are shorter.
	{name: "shared", params: minioBackendParams,
		tweak: func(cfg *options.Config) { cfg.Writer.BatchWindow = 5 * time.Millisecond }, messages: 100},
}

func TestConfigFromParams(t *testing.T) {
	setParams(t, map[string]string{
		"etcd.endpoints":          "etcd-a:2379,etcd-b:2379",
		"etcd.rootPath":           "/by-dev/",
		"woodpecker.storage.type": "minio",
		"minio.address":           "minio.local:9999", // a port here is replaced by minio.port
		"minio.port":              "9000",
		"minio.bucketName":        "milvus-bucket",
		"minio.rootPath":          "files",
		"minio.accessKeyID":       "ak",
		"minio.secretAccessKey":   "sk",
		"minio.region":            "eu-west-1",
	})
	cfg, err := ConfigFromParams(paramtable.Get())
	if err != nil {
		t.Fatalf("ConfigFromParams: %v", err)
	}
	if got := strings.Join(cfg.Etcd.Endpoints, ","); got != "etcd-a:2379,etcd-b:2379" {
		t.Errorf("etcd.endpoints = %s", got)
	}
	s := cfg.Storage
	if cfg.Etcd.RootPath != "by-dev/wpwal" || s.Type != options.StorageMinIO || s.Endpoint != "minio.local:9000" ||
		s.Bucket != "milvus-bucket" || s.RootPath != "files/wpwal" || s.AccessKey != "ak" || s.SecretKey != "sk" ||
		s.Region != "eu-west-1" || s.UseSSL || !s.CreateBucket {
		t.Errorf("config from params: %v", cfg)
	}
	if cfg.Writer != options.Default().Writer {
		t.Errorf("writer settings changed: %+v", cfg.Writer)
	}

	setParams(t, map[string]string{"woodpecker.storage.type": "local", "woodpecker.storage.rootPath": "default", "localStorage.path": "/var/lib/milvus/data/"})
	if cfg, err = ConfigFromParams(paramtable.Get()); err != nil || cfg.Storage.Type != options.StorageLocal || cfg.Storage.RootPath != "/var/lib/milvus/data/wpwal" {
		t.Errorf("local default root: %v, %v", cfg.Storage, err)
	}
	setParams(t, map[string]string{"woodpecker.storage.rootPath": "/srv/wal"})
	if cfg, err = ConfigFromParams(paramtable.Get()); err != nil || cfg.Storage.RootPath != "/srv/wal" {
		t.Errorf("local custom root: %v, %v", cfg.Storage, err)
	}

	setParams(t, map[string]string{"woodpecker.storage.type": "service", "minio.useIAM": "false", "minio.bucketName": "milvus-bucket"})
	if cfg, err = ConfigFromParams(paramtable.Get()); err != nil || cfg.Mode != options.ModeQuorumBuffer || cfg.Storage.Type != options.StorageMinIO {
		t.Errorf("service: mode %q storage %q, %v; want quorumBuffer over minio", cfg.Mode, cfg.Storage.Type, err)
	}
	for _, tc := range []map[string]string{
		{"woodpecker.storage.type": "rocksdb"},
		{"woodpecker.storage.type": "minio", "minio.useIAM": "true"},
		{"woodpecker.storage.type": "minio", "minio.useIAM": "false", "minio.bucketName": "Bad_Bucket"},
	} {
		setParams(t, tc)
		if _, err := ConfigFromParams(paramtable.Get()); !errors.Is(err, options.ErrInvalidConfig) {
			t.Errorf("ConfigFromParams with %v = %v, want ErrInvalidConfig", tc, err)
		}
	}
}
