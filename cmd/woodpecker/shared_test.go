package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/s3store"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/shared"
)

// TestSegmentVerifySharedObjects: a log written into shared objects
// (writer.batchWindow > 0) verifies clean through its seal record, and a
// byte flipped inside its block in the shared object is reported as
// corruption at that object and offset (exit 4), not as missing blocks.
func TestSegmentVerifySharedObjects(t *testing.T) {
	s3 := testenv.MinIO(t)
	bucket := testenv.NewBucket(t, s3)
	c := newCLI(t)
	root := testenv.UniquePrefix(t)
	cfgPath := filepath.Join(c.dir, "shared.yaml")
	if err := os.WriteFile(cfgPath, []byte("writer:\n  batchWindow: 5ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.flags = []string{"--config", cfgPath, "--etcd", strings.Join(testenv.EtcdEndpoints(t), ","), "--etcd-root", root,
		"--storage", "minio", "--storage-endpoint", s3.Endpoint, "--storage-bucket", bucket, "--storage-root", root}
	c.env = append(c.env, "WOODPECKER_STORAGE_ACCESS_KEY="+s3.AccessKey, "WOODPECKER_STORAGE_SECRET_KEY="+s3.SecretKey)
	c.ok("x\ny\nz\n", "append", "ledger", "--create")
	if r := c.ok("", "segment", "verify", "ledger"); !strings.Contains(r.stdout, "0 problems") {
		t.Fatalf("verify of a shared segment:\n%s", r.stdout)
	}

	ctx := context.Background()
	store, err := s3store.Open(ctx, s3store.Config{Endpoint: s3.Endpoint, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey,
		Bucket: bucket, Region: s3.Region, RootPath: root})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	objs, err := objstore.ListAll(ctx, store, shared.ObjectKey("", ""), "")
	if err != nil || len(objs) == 0 {
		t.Fatalf("no shared object: %v %v", objs, err)
	}
	key := objs[0].Key
	data, err := store.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	at, n, err := shared.DecodeTrailer(data[len(data)-shared.TrailerSize:], int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	exts, err := shared.DecodeIndex(key, data[at:at+n], at)
	if err != nil || len(exts) == 0 {
		t.Fatalf("index: %v %v", exts, err)
	}
	x := exts[0]
	data[x.Offset+x.Length-5] ^= 0x01 // the block's last payload byte, before its body CRC
	if err := store.Put(ctx, key, data, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	r := c.run("", "segment", "verify", "ledger")
	if r.code != exitCorrupt || !strings.Contains(r.stdout, key) {
		t.Fatalf("verify does not name the shared object %s:\n%s", key, r)
	}
}
