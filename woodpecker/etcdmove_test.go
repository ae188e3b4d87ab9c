package woodpecker_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// TestClientFollowsEtcdToANewEndpoint: a client whose etcd is gone fails
// its requests at their deadline instead of waiting forever, and works
// again once pointed at where etcd moved (as the command does when another
// process takes over its embedded etcd on another port).
func TestClientFollowsEtcdToANewEndpoint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := l.Addr().String()
	_ = l.Close()
	cfg := options.Default()
	cfg.Etcd.Endpoints = []string{gone}
	cfg.Etcd.RootPath = testenv.UniquePrefix(t)
	cfg.Etcd.RequestTimeout = 300 * time.Millisecond
	cfg.Storage.Type = options.StorageLocal
	cfg.Storage.RootPath = t.TempDir()
	c, err := woodpecker.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	done := make(chan error, 1)
	go func() { done <- c.CreateLog(context.Background(), "moved") }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("CreateLog with etcd gone: %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("CreateLog with etcd gone has not returned after a minute")
	}

	if err := c.SetEtcdEndpoints(testenv.EtcdEndpoints(t)...); err != nil {
		t.Fatal(err)
	}
	// The deadline of one request is short: give the connection a few.
	var lastErr error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		if lastErr = c.CreateLog(context.Background(), "moved"); lastErr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if lastErr != nil {
		t.Fatalf("CreateLog after SetEtcdEndpoints: %v", lastErr)
	}
	if ok, err := c.LogExists(context.Background(), "moved"); err != nil || !ok {
		t.Fatalf("LogExists after the move: %v %v", ok, err)
	}

	// A client on an etcd client of the caller's leaves moving it to the
	// caller.
	own := newClient(t, localBackend, nil)
	if err := own.SetEtcdEndpoints(gone); err == nil {
		t.Fatal("SetEtcdEndpoints on a client given its etcd client succeeded")
	}
}
