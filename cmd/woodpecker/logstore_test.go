package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/woodpecker-wal/woodpecker/internal/objstore/s3store"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/quorum"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// TestLogstoreServesWhileRegisteredAndDeregistersOnSIGTERM runs
// `woodpecker logstore` as a process on etcd and MinIO: it must print its
// address, answer health checks, be registered in etcd under a lease,
// upload what it is sent to the configured bucket, and on SIGTERM leave
// the registry and exit 0.
func TestLogstoreServesWhileRegisteredAndDeregistersOnSIGTERM(t *testing.T) {
	s3 := testenv.MinIO(t)
	bucket := testenv.NewBucket(t, s3)
	root := testenv.UniquePrefix(t)
	c := newCLI(t)
	yaml := fmt.Sprintf(`etcd:
  endpoints: [%q]
  rootPath: %q
storage:
  type: minio
  endpoint: %q
  bucket: %q
  rootPath: %q
  region: %q
  accessKey: %q
  secretKey: %q
`, strings.Join(testenv.EtcdEndpoints(t), ","), root, s3.Endpoint, bucket, root, s3.Region, s3.AccessKey, s3.SecretKey)
	path := filepath.Join(c.dir, "woodpecker.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c.flags = []string{"--config", path}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := c.command(ctx, "", "logstore", "--addr", "127.0.0.1:0", "--id", "ls-1", "--zone", "z1", "--budget", "16MiB")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		exited <- cmd.Wait()
	}()
	defer func() { // a failed test must not leave the server running
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	var addr string
	select {
	case line := <-lines:
		m := regexp.MustCompile(`^logstore ls-1 listening on (127\.0\.0\.1:\d+)$`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("first line of stdout %q, want \"logstore ls-1 listening on 127.0.0.1:PORT\"", line)
		}
		addr = m[1]
	case err := <-exited:
		t.Fatalf("logstore exited before listening: %v\n%s", err, stderr.String())
	case <-ctx.Done():
		t.Fatal("logstore did not print its address")
	}

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v, %v", hc, err)
	}

	etcd := testenv.Etcd(t)
	nodes, err := quorum.Nodes(ctx, etcd, root)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 || nodes[0].ID != "ls-1" || nodes[0].Addr != addr || nodes[0].Zone != "z1" {
		t.Fatalf("registry holds %+v, want ls-1 at %s in zone z1", nodes, addr)
	}
	kv, err := etcd.Get(ctx, quorum.RegistryPrefix(root)+"ls-1")
	if err != nil || len(kv.Kvs) != 1 || kv.Kvs[0].Lease == 0 {
		t.Fatalf("registration is not under a lease: %v, %v", kv, err)
	}

	// A block sent to it as uploader lands in the configured bucket, under
	// the key the writers' object backend uses.
	blk, err := segment.EncodeBlock(nil, segment.BlockHeader{LogID: 1, SegmentID: 2, Epoch: 3}, [][]byte{[]byte("x")}, segment.CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	ls := quorumpb.NewLogStoreClient(conn)
	seg := &quorumpb.Segment{LogId: 1, SegmentId: 2, Epoch: 3}
	if _, err := ls.AddBlock(ctx, &quorumpb.AddBlockRequest{Segment: seg, Block: blk, Lac: -1, Uploaded: -1, Uploader: true}); err != nil {
		t.Fatal(err)
	}
	if resp, err := ls.Flush(ctx, &quorumpb.FlushRequest{Segment: seg, ThroughBlock: 0}); err != nil || resp.GetUploaded() != 0 {
		t.Fatalf("flush: %v, %v", resp, err)
	}
	store, err := s3store.Open(ctx, s3store.Config{Endpoint: s3.Endpoint, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey,
		Bucket: bucket, RootPath: root, Region: s3.Region, Secure: s3.Secure})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if got, err := store.Get(ctx, segment.BlockKey("", 1, 2, 0)); err != nil || string(got) != string(blk) {
		t.Fatalf("uploaded block: %v (equal %t)", err, string(got) == string(blk))
	}

	stop := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("logstore exited with %v after SIGTERM, want 0\n%s", err, stderr.String())
		}
		t.Logf("logstore exited %s after SIGTERM; stderr:\n%s", time.Since(stop).Round(time.Millisecond), stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("logstore still running 10s after SIGTERM\n%s", stderr.String())
	}
	if nodes, err := quorum.Nodes(ctx, etcd, root); err != nil || len(nodes) != 0 {
		t.Fatalf("after SIGTERM the registry holds %+v (%v), want nothing", nodes, err)
	}
	for _, bad := range []string{"panic", "goroutine "} {
		if strings.Contains(stderr.String(), bad) {
			t.Errorf("stderr holds %q:\n%s", bad, stderr.String())
		}
	}
}

func TestLogstoreNeedsEtcdAndAnObjectStore(t *testing.T) {
	wantError(t, sharedCLI(t).run("", "logstore"), exitUsage, "logstore needs etcd and an object store")
	wantError(t, newCLI(t).run("", "logstore", "--budget", "lots"), exitUsage, `--budget "lots"`)
}
