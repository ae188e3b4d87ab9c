package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/internal/testenv"
)

// TestObjectStoreTLS runs the command against a MinIO that serves https
// with a certificate no system trusts: the command must honour
// storage.tls (a CA file, or skipping verification) as the library does,
// and without them fail with an error that says what to check.
func TestObjectStoreTLS(t *testing.T) {
	minio := testenv.StartMinIOTLS(t)
	s3, caFile := minio.S3(), minio.CAFile()
	etcd := strings.Join(testenv.EtcdEndpoints(t), ",")

	// config writes a configuration file for the server with the given
	// storage type (client library) and storage.tls lines, and returns a
	// runner that uses it.
	config := func(t *testing.T, typ, tlsLines string) *cli {
		t.Helper()
		c := newCLI(t)
		root := testenv.UniquePrefix(t)
		yaml := fmt.Sprintf(`etcd:
  endpoints: [%q]
  rootPath: %q
storage:
  type: %s
  endpoint: %q
  bucket: tls-test
  rootPath: %q
  region: %q
  accessKey: %q
  secretKey: %q
  createBucket: true
  useSSL: true
%s`, etcd, root, typ, s3.Endpoint, root, s3.Region, s3.AccessKey, s3.SecretKey, tlsLines)
		path := filepath.Join(c.dir, "woodpecker.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		c.flags = []string{"--config", path}
		return c
	}

	t.Run("ca file", func(t *testing.T) {
		c := config(t, "minio", "  tls:\n    caFile: "+caFile+"\n")
		c.ok("one\ntwo\n", "append", "ledger", "--create")
		if got := c.ok("", "tail", "ledger", "--no-follow").stdout; got != "one\ntwo\n" {
			t.Fatalf("tail over https printed %q, want the two entries", got)
		}
		c.ok("", "segment", "verify", "ledger")
	})
	t.Run("ca file, AWS SDK", func(t *testing.T) {
		c := config(t, "s3", "  tls:\n    caFile: "+caFile+"\n")
		c.ok("x\n", "append", "ledger", "--create")
		if got := c.ok("", "tail", "ledger", "--no-follow").stdout; got != "x\n" {
			t.Fatalf("tail over https printed %q, want the entry", got)
		}
	})
	t.Run("insecure skip verify", func(t *testing.T) {
		c := config(t, "minio", "  tls:\n    insecureSkipVerify: true\n")
		r := c.ok("", "log", "list")
		if strings.Contains(r.stdout, "ledger") {
			t.Fatalf("log list under another root shows the first run's log:\n%s", r)
		}
	})
	t.Run("no ca file", func(t *testing.T) {
		c := config(t, "minio", "")
		start := time.Now()
		r := c.run("", "log", "list")
		t.Logf("without a CA file, after %s: %s", time.Since(start).Round(time.Millisecond), r.stderr)
		wantError(t, r, exitFailure, "certificate", "storage.tls.caFile")
	})
}
