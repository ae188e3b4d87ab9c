package quorum

import (
	"crypto/tls"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
)

// Transport reaches LogStore replicas by address. Implementations are safe
// for concurrent use. The replica's methods are the generated gRPC client
// interface, so a test can wrap any replica (see Faults).
type Transport interface {
	// Replica returns the client of the LogStore at addr. It does not
	// block on connecting: a call to an unreachable replica fails.
	Replica(addr string) (quorumpb.LogStoreClient, error)
	// Close releases every connection.
	Close() error
}

// GRPCTransport dials LogStores over gRPC, one connection per address,
// kept until Close.
type GRPCTransport struct {
	tls *tls.Config

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
}

// NewGRPCTransport returns a transport; tc nil means plaintext.
func NewGRPCTransport(tc *tls.Config) *GRPCTransport {
	return &GRPCTransport{tls: tc, conns: map[string]*grpc.ClientConn{}}
}

// Replica implements Transport.
func (t *GRPCTransport) Replica(addr string) (quorumpb.LogStoreClient, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errors.New("quorum transport is closed")
	}
	if c, ok := t.conns[addr]; ok {
		return quorumpb.NewLogStoreClient(c), nil
	}
	creds := insecure.NewCredentials()
	if t.tls != nil {
		creds = credentials.NewTLS(t.tls)
	}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes), grpc.MaxCallSendMsgSize(maxMessageBytes),
			grpc.ForceCodecV2(quorumpb.Codec{})),
		// A LogStore that restarts is back within seconds: reconnect
		// within a second of that, not after gRPC's default backoff of up
		// to two minutes, during which every call would fail at once.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		}))
	if err != nil {
		return nil, errors.Wrapf(err, "logstore %s", addr)
	}
	t.conns[addr] = c
	return quorumpb.NewLogStoreClient(c), nil
}

// maxMessageBytes lets the largest block (256 MiB) and its envelope through.
const maxMessageBytes = 257 << 20

// Close implements Transport.
func (t *GRPCTransport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	var err error
	for addr, c := range t.conns {
		err = errors.CombineErrors(err, c.Close())
		delete(t.conns, addr)
	}
	return err
}
