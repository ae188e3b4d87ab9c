package embedetcd

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func client(t *testing.T, ep string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func open(t *testing.T, dir string) *Server {
	t.Helper()
	s, err := Open(context.Background(), Config{Dir: dir})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestRestartKeepsData proves the server persists what it acknowledged in
// its directory, and starts again on it (with a new port).
func TestRestartKeepsData(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "etcd")
	s := open(t, dir)
	if s.Shared() {
		t.Fatal("first server of a directory reports Shared")
	}
	if _, err := client(t, s.Endpoint()).Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, EndpointFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("endpoint file after Close: %v, want it removed", err)
	}

	s2 := open(t, dir)
	resp, err := client(t, s2.Endpoint()).Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("after restart got %v, want k=v", resp.Kvs)
	}
}

// TestSecondOpenJoins proves a second Open of a directory in use joins the
// running server instead of starting another on the same data.
func TestSecondOpenJoins(t *testing.T) {
	dir := t.TempDir()
	first := open(t, dir)
	second := open(t, dir)
	if !second.Shared() {
		t.Fatal("second Open of a served directory is not Shared")
	}
	if second.Endpoint() != first.Endpoint() {
		t.Fatalf("second endpoint %s, want the first's %s", second.Endpoint(), first.Endpoint())
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	// Closing the shared handle must not stop the server.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client(t, first.Endpoint()).Put(ctx, "still", "up"); err != nil {
		t.Fatalf("server stopped by closing a shared handle: %v", err)
	}
}

// TestBusyWithoutEndpoint: a directory locked by a holder that never
// publishes an endpoint gives ErrBusy once the wait is over.
func TestBusyWithoutEndpoint(t *testing.T) {
	dir := t.TempDir()
	lock, locked, err := tryLock(filepath.Join(dir, LockFile))
	if err != nil || !locked {
		t.Fatalf("tryLock: %v %v", locked, err)
	}
	t.Cleanup(func() { _ = unlock(lock) })
	_, err = Open(context.Background(), Config{Dir: dir, StartTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("Open of a locked directory: %v, want ErrBusy", err)
	}
}

func TestOpenNeedsDir(t *testing.T) {
	if _, err := Open(context.Background(), Config{}); err == nil {
		t.Fatal("Open without a directory succeeded")
	}
}
