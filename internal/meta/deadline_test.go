package meta

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

// TestEveryEtcdCallHasADeadline proves that a store whose etcd went away
// answers every kind of request (read, write, delete, transaction) with an
// error at its deadline, even when the caller gave none: the etcd client
// alone waits for a connection forever.
func TestEveryEtcdCallHasADeadline(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	// An address nothing listens on: etcd has gone away.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	s := New(cli, "deadline-test", WithCallTimeout(200*time.Millisecond))
	tok := WriterToken{LogID: 1, Epoch: 1, Nonce: "n"}
	ctx := context.Background() // no deadline of the caller's own
	calls := map[string]func() error{
		"get":         func() error { _, err := s.GetLog(ctx, "l"); return err },
		"transaction": func() error { _, err := s.SealSegment(ctx, tok, SegmentMeta{LogID: 1, ID: 0}); return err },
		"put":         func() error { return s.PublishReader(ctx, 1, 7, Position{}) },
		"delete":      func() error { return s.RemoveReader(ctx, 1, 7) },
		"create loop": func() error { _, err := s.CreateLog(ctx, "l"); return err },
	}
	for name, call := range calls {
		done := make(chan error, 1)
		go func() { done <- call() }()
		select {
		case err := <-done:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s against a gone etcd: %v, want context.DeadlineExceeded", name, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%s against a gone etcd has not returned after a minute", name)
		}
	}
}
