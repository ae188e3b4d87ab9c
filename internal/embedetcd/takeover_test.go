package embedetcd

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
)

// openWith opens dir with cfg's callbacks and closes the handle at the end
// of the test.
func openWith(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", cfg.Dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("no %s within 30s", what)
		panic("unreachable")
	}
}

// TestSharedHandleTakesOverWhenHostCloses proves that a process left
// behind by the process serving the directory is not left without etcd:
// its shared handle starts a server on the same data and the same port, and
// a client made for the old server goes on working, with the data intact.
func TestSharedHandleTakesOverWhenHostCloses(t *testing.T) {
	dir := t.TempDir()
	host := open(t, dir)
	tookOver := make(chan string, 1)
	moved := make(chan string, 1)
	joined := openWith(t, Config{Dir: dir,
		OnTakeOver: func(ep string) { tookOver <- ep },
		OnEndpoint: func(ep string) { moved <- ep }})
	if !joined.Shared() {
		t.Fatal("second Open of a served directory is not Shared")
	}
	cli := client(t, joined.Endpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	old := host.Endpoint()
	if err := host.Close(); err != nil {
		t.Fatal(err)
	}
	ep := await(t, tookOver, "take-over")
	if ep != old || joined.Endpoint() != old {
		t.Fatalf("took over on %s (Endpoint %s), want the old endpoint %s", ep, joined.Endpoint(), old)
	}
	if joined.Shared() {
		t.Fatal("the handle that took over still reports Shared")
	}
	select {
	case ep := <-moved:
		t.Fatalf("OnEndpoint(%s) called, but the endpoint did not change", ep)
	default:
	}
	if got := readEndpoint(dir); got != old {
		t.Fatalf("published endpoint %q, want %q", got, old)
	}
	resp, err := cli.Get(ctx, "k")
	if err != nil {
		t.Fatalf("the old client does not reach the new server: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("after the take-over got %v, want k=v", resp.Kvs)
	}

	// A third process joins the new server, and takes over in turn.
	third := openWith(t, Config{Dir: dir, OnTakeOver: func(ep string) { tookOver <- ep }})
	if !third.Shared() || third.Endpoint() != old {
		t.Fatalf("third handle: shared %v endpoint %s, want to join %s", third.Shared(), third.Endpoint(), old)
	}
	if err := joined.Close(); err != nil {
		t.Fatal(err)
	}
	await(t, tookOver, "second take-over")
	if _, err := cli.Get(ctx, "k"); err != nil {
		t.Fatalf("after the second take-over: %v", err)
	}
}

// TestTakeOverOnAnotherPortPublishesIt: when the old port is taken, the
// handle serves on another one and tells its owner where etcd moved.
func TestTakeOverOnAnotherPortPublishesIt(t *testing.T) {
	dir := t.TempDir()
	host := open(t, dir)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyEP := "http://" + busy.Addr().String()
	moved := make(chan string, 4)
	tookOver := make(chan string, 1)
	openWith(t, Config{Dir: dir,
		OnEndpoint: func(ep string) { moved <- ep },
		OnTakeOver: func(ep string) { tookOver <- ep }})
	// Make the joined handle believe etcd serves on the busy port: the
	// take-over must then fall back to a port of its own.
	if err := writeFileAtomic(filepath.Join(dir, EndpointFile), []byte(busyEP+"\n")); err != nil {
		t.Fatal(err)
	}
	if ep := await(t, moved, "endpoint change"); ep != busyEP {
		t.Fatalf("OnEndpoint(%s), want %s", ep, busyEP)
	}
	if err := host.Close(); err != nil {
		t.Fatal(err)
	}
	ep := await(t, tookOver, "take-over")
	if ep == busyEP {
		t.Fatalf("took over on the busy endpoint %s", ep)
	}
	if got := await(t, moved, "endpoint change after the take-over"); got != ep {
		t.Fatalf("OnEndpoint(%s) after the take-over on %s", got, ep)
	}
	if got := readEndpoint(dir); got != ep {
		t.Fatalf("published endpoint %q, want %q", got, ep)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client(t, ep).Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
}

// TestTakeOverFailureIsReported: when the data cannot be served, the handle
// left behind reports ErrHostGone instead of leaving its owner to wait.
func TestTakeOverFailureIsReported(t *testing.T) {
	dir := t.TempDir()
	host := open(t, dir)
	lost := make(chan error, 1)
	joined := openWith(t, Config{Dir: dir, StartTimeout: 5 * time.Second, OnLost: func(err error) { lost <- err }})
	// Take the data away from under the running server (it keeps its open
	// files), and leave a plain file where the next server needs a folder.
	member := filepath.Join(dir, "member")
	if err := os.Rename(member, member+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(member, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := host.Close(); err != nil {
		t.Fatal(err)
	}
	err := await(t, lost, "report of the failed take-over")
	if !errors.Is(err, ErrHostGone) {
		t.Fatalf("OnLost(%v), want ErrHostGone", err)
	}
	if !joined.Shared() {
		t.Fatal("a handle that failed to take over reports that it serves")
	}
}
