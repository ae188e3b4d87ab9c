package testenv

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/minio/minio-go/v7"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { Main(m) }

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// putGet writes an object to a new bucket on s, reads it back, and returns
// a client and the bucket for further checks.
func putGet(t *testing.T, s S3) (*minio.Client, string) {
	t.Helper()
	ctx := testContext(t)
	cli, tr, err := minioClient(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	bucket := NewBucket(t, s)
	key := UniquePrefix(t) + "/obj"
	want := []byte("hello from " + t.Name())
	if _, err := cli.PutObject(ctx, bucket, key, bytes.NewReader(want), int64(len(want)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put %s/%s on %s: %v", bucket, key, s.Name, err)
	}
	got := getObject(ctx, t, cli, bucket, key)
	if !bytes.Equal(got, want) {
		t.Fatalf("get %s/%s on %s = %q, want %q", bucket, key, s.Name, got, want)
	}
	return cli, bucket
}

func getObject(ctx context.Context, t *testing.T, cli *minio.Client, bucket, key string) []byte {
	t.Helper()
	obj, err := cli.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	defer obj.Close()
	got, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("read %s/%s: %v", bucket, key, err)
	}
	return got
}

// createOnlyPut puts key with If-None-Match: * and returns the HTTP status
// of the error (0 on success).
func createOnlyPut(ctx context.Context, cli *minio.Client, bucket, key string, data []byte) (int, error) {
	var opts minio.PutObjectOptions
	opts.SetMatchETagExcept("*")
	_, err := cli.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), opts)
	if err == nil {
		return 0, nil
	}
	return minio.ToErrorResponse(err).StatusCode, err
}

func TestMinIOPutGetAndCreateOnly(t *testing.T) {
	s := MinIO(t)
	if s.Name != "minio" && s.Name != "external" {
		t.Fatalf("MinIO(t).Name = %q", s.Name)
	}
	cli, bucket := putGet(t, s)
	ctx := testContext(t)
	key := UniquePrefix(t) + "/create-only"
	if code, err := createOnlyPut(ctx, cli, bucket, key, []byte("first")); err != nil {
		t.Fatalf("first create-only put: status %d: %v", code, err)
	}
	code, err := createOnlyPut(ctx, cli, bucket, key, []byte("second"))
	if code != http.StatusPreconditionFailed {
		t.Fatalf("second create-only put: status %d (err %v), want 412", code, err)
	}
	if got := getObject(ctx, t, cli, bucket, key); string(got) != "first" {
		t.Fatalf("after a refused create-only put the object is %q, want %q", got, "first")
	}
}

func TestVersityGWAnswers(t *testing.T) {
	s := VersityGW(t)
	if s.Name != "versitygw" {
		t.Fatalf("VersityGW(t).Name = %q", s.Name)
	}
	cli, bucket := putGet(t, s)
	// Informational: whether versitygw honours create-only puts is for the
	// object store's conformance suite to decide; record what it does.
	ctx := testContext(t)
	key := UniquePrefix(t) + "/create-only"
	if _, err := createOnlyPut(ctx, cli, bucket, key, []byte("first")); err != nil {
		t.Fatalf("first create-only put: %v", err)
	}
	code, err := createOnlyPut(ctx, cli, bucket, key, []byte("second"))
	t.Logf("versitygw: second create-only put: status %d, err %v", code, err)
}

func etcdPutGet(ctx context.Context, t *testing.T, cli *clientv3.Client, key, val string) {
	t.Helper()
	if _, err := cli.Put(ctx, key, val); err != nil {
		t.Fatalf("etcd put %s: %v", key, err)
	}
	etcdExpect(ctx, t, cli, key, val)
}

func etcdExpect(ctx context.Context, t *testing.T, cli *clientv3.Client, key, want string) {
	t.Helper()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatalf("etcd get %s: %v", key, err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != want {
		t.Fatalf("etcd get %s = %v, want one value %q", key, resp.Kvs, want)
	}
}

func TestEmbeddedEtcdPutGet(t *testing.T) {
	ctx := testContext(t)
	cli := Etcd(t)
	prefix := UniquePrefix(t)
	etcdPutGet(ctx, t, cli, prefix+"/k", "v")
	// A second client sees the first one's write: both reach one server.
	etcdExpect(ctx, t, Etcd(t), prefix+"/k", "v")
}

func newEtcdClient(t *testing.T, eps []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// downModes are the two ways a test takes a dedicated server down.
var downModes = []struct {
	name string
	down func(*dedicatedServer)
}{
	{"kill", (*dedicatedServer).Kill},
	{"stop", (*dedicatedServer).Stop},
}

// takeDown takes d down as mode says and checks that its process is gone.
func takeDown(t *testing.T, d *dedicatedServer, mode string, down func(*dedicatedServer)) {
	t.Helper()
	pid := d.proc.pid()
	down(d)
	if processAlive(pid) {
		t.Fatalf("%s pid %d still alive after %s", d.proc.name, pid, mode)
	}
}

func TestEtcdProcessRestartKeepsData(t *testing.T) {
	for _, tc := range downModes {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			e := StartEtcd(t)
			if want := "etcd at " + e.Endpoints()[0] + " (pid "; !strings.HasPrefix(e.String(), want) {
				t.Errorf("String() = %q, want it to start with %q", e.String(), want)
			}
			etcdPutGet(ctx, t, newEtcdClient(t, e.Endpoints()), "k", "survives")

			takeDown(t, &e.dedicatedServer, tc.name, tc.down)
			e.Start()
			etcdExpect(ctx, t, newEtcdClient(t, e.Endpoints()), "k", "survives")
		})
	}
}

func TestMinIOProcessRestartKeepsObjects(t *testing.T) {
	for _, tc := range downModes {
		t.Run(tc.name, func(t *testing.T) {
			m := StartMinIO(t)
			cli, bucket := putGet(t, m.S3())
			ctx := testContext(t)
			want := []byte("kept across a restart")
			if _, err := cli.PutObject(ctx, bucket, "k", bytes.NewReader(want), int64(len(want)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}

			takeDown(t, &m.dedicatedServer, tc.name, tc.down)
			if err := minioReady(m.S3().Endpoint)(ctx); err == nil {
				t.Fatal("MinIO answered while down")
			}

			m.Start()
			if got := getObject(ctx, t, cli, bucket, "k"); !bytes.Equal(got, want) {
				t.Fatalf("after restart got %q, want %q", got, want)
			}
		})
	}
}

func TestFreeAddrs(t *testing.T) {
	addrs, err := freeAddrs(3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if !strings.HasPrefix(a, "127.0.0.1:") || seen[a] {
			t.Errorf("freeAddrs(3) = %v: want three different addresses on 127.0.0.1", addrs)
		}
		seen[a] = true
	}
	if len(addrs) != 3 {
		t.Errorf("freeAddrs(3) = %v", addrs)
	}
}

// TestStartOnFreePortsRetries: a server that does not come up is started
// afresh on new ports, portAttempts times, and the last failure is returned.
func TestStartOnFreePortsRetries(t *testing.T) {
	bin, err := exec.LookPath("false")
	if err != nil {
		t.Skipf("no false(1) to stand for a server that exits at once: %v", err)
	}
	logPath := filepath.Join(t.TempDir(), "false.log")
	var calls []string
	p, addrs, err := startOnFreePorts(2, func(addrs []string) *process {
		calls = append(calls, strings.Join(addrs, ","))
		return &process{
			name: "false", bin: bin, logPath: logPath,
			ready: func(context.Context) error { return errors.New("not ready") },
		}
	})
	if p != nil || addrs != nil || err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatalf("startOnFreePorts = %v, %v, %v; want no process and the start's error", p, addrs, err)
	}
	if len(calls) != portAttempts {
		t.Fatalf("%d starts (%v), want %d", len(calls), calls, portAttempts)
	}
}

func TestToolVersionsMatchScript(t *testing.T) {
	script, err := os.ReadFile("../../scripts/tools.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ variable, want string }{
		{"MINIO_VERSION", minioVersion},
		{"VERSITYGW_VERSION", versityGWVersion},
		{"ETCD_VERSION", etcdVersion},
	} {
		m := regexp.MustCompile(`(?m)^` + tc.variable + `=(\S+)$`).FindSubmatch(script)
		if m == nil {
			t.Errorf("scripts/tools.sh sets no %s", tc.variable)
			continue
		}
		if string(m[1]) != tc.want {
			t.Errorf("scripts/tools.sh: %s=%s, internal/testenv has %s", tc.variable, m[1], tc.want)
		}
	}
}

func TestToolPath(t *testing.T) {
	t.Setenv("WOODPECKER_TOOLS_DIR", t.TempDir())
	for _, name := range []string{"minio", "versitygw", "etcd", "etcdctl"} {
		_, err := ToolPath(name)
		var missing *ToolMissingError
		if !errors.As(err, &missing) || missing.Tool != name {
			t.Errorf("ToolPath(%q) in an empty folder: err %v, want *ToolMissingError", name, err)
			continue
		}
		if !strings.Contains(err.Error(), "make tools") {
			t.Errorf("ToolPath(%q) error %q does not say `make tools`", name, err)
		}
	}
	_, err := ToolPath("nonsense")
	var missing *ToolMissingError
	if err == nil || errors.As(err, &missing) {
		t.Errorf("ToolPath(nonsense): err %v, want a plain error", err)
	}
}

// recordingTB records how a test ended instead of ending it.
type recordingTB struct {
	testing.TB
	ended []string
}

func (r *recordingTB) Helper()               {}
func (r *recordingTB) Skipf(string, ...any)  { r.ended = append(r.ended, "skip") }
func (r *recordingTB) Fatalf(string, ...any) { r.ended = append(r.ended, "fatal") }

func TestUnavailable(t *testing.T) {
	missing := &ToolMissingError{Tool: "minio", Version: minioVersion, Path: "/nowhere/minio"}
	for _, tc := range []struct {
		name, ci string
		err      error
		want     string
	}{
		{"missing binary skips", "", missing, "skip"},
		{"missing binary fails in CI", "true", missing, "fatal"},
		{"broken server fails", "", errors.New("exited before it was ready"), "fatal"},
		{"broken server fails in CI", "true", errors.New("exited before it was ready"), "fatal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recordingTB{TB: t}
			unavailable(r, "MinIO", tc.err)
			if len(r.ended) == 0 || r.ended[0] != tc.want {
				t.Fatalf("unavailable with CI=%q and %v ended the test with %v, want %s", tc.ci, tc.err, r.ended, tc.want)
			}
		})
	}
}

func TestNames(t *testing.T) {
	bucketRE := regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
	prefixRE := regexp.MustCompile(`^t-[A-Za-z0-9._-]+-[0-9a-f]{12}$`)
	for _, name := range []string{
		"TestX",
		"TestX/sub_case/with spaces & symbols",
		"TestX/" + strings.Repeat("Long", 40),
		"TestX/---///",
		"TestÜñíçødé/日本",
	} {
		t.Run(name, func(t *testing.T) {
			b1, b2 := bucketName(t), bucketName(t)
			if !bucketRE.MatchString(b1) || strings.Contains(b1, "--") {
				t.Errorf("bucketName = %q, not a valid bucket name", b1)
			}
			if b1 == b2 {
				t.Errorf("bucketName twice = %q", b1)
			}
			p1, p2 := UniquePrefix(t), UniquePrefix(t)
			if !prefixRE.MatchString(p1) || len(p1) > 60 {
				t.Errorf("UniquePrefix = %q, not path-safe", p1)
			}
			if p1 == p2 {
				t.Errorf("UniquePrefix twice = %q", p1)
			}
		})
	}
}
