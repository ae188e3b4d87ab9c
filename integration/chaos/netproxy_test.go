package chaos

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// netFault is what a proxy does to the bytes it forwards. The zero value
// forwards them unchanged.
//
// A TCP stream cannot lose bytes in the middle and stay usable, and a real
// partition does not make it do so: the kernel retransmits until the
// partition heals or a timeout ends the connection. So "drop" here stalls:
// the proxy stops reading the stalled direction, the sender's socket buffers
// fill and it blocks, as it would behind a partition; when the fault ends the
// held bytes flow again, as retransmissions would.
type netFault struct {
	// StallUp stalls client-to-server bytes, StallDown server-to-client
	// bytes; both is a partition, one a one-way partition (a request that
	// reaches the server whose answer never comes back). New connections
	// are held until both directions flow.
	StallUp, StallDown bool
	// Latency delays every chunk of bytes, in both directions.
	Latency time.Duration
	// Rate limits each direction of each connection to this many bytes a
	// second (0: no limit).
	Rate int
	// Refuse resets new connections at once (after Reset has reset the
	// existing ones).
	Refuse bool
}

// proxy forwards TCP connections from a local port to a target, with faults
// (netFault) that can be changed at any time, and can reset every
// connection. It is safe for concurrent use.
type proxy struct {
	name string
	ln   net.Listener

	mu      sync.Mutex
	target  string
	fault   netFault
	changed chan struct{} // closed and replaced when fault changes
	conns   map[*proxyConn]struct{}
	closed  bool
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup
}

type proxyConn struct {
	client, server net.Conn // server is nil until dialled
}

// startProxy listens on a free port of 127.0.0.1 and forwards to target.
func startProxy(name, target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{name: name, ln: ln, target: target, changed: make(chan struct{}),
		conns: map[*proxyConn]struct{}{}, done: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients dial.
func (p *proxy) Addr() string { return p.ln.Addr().String() }

// SetTarget makes new connections go to target.
func (p *proxy) SetTarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

// Set replaces the fault.
func (p *proxy) Set(f netFault) {
	p.mu.Lock()
	p.fault = f
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// Heal forwards unchanged from now on.
func (p *proxy) Heal() { p.Set(netFault{}) }

// Reset resets every open connection (RST to both ends).
func (p *proxy) Reset() {
	p.mu.Lock()
	conns := make([]proxyConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, *c) // server is written under p.mu
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.reset()
	}
}

// Close stops accepting, resets every connection and waits for the proxy's
// goroutines to end.
func (p *proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.done)
	p.mu.Unlock()
	_ = p.ln.Close()
	p.Reset()
	p.wg.Wait()
}

func (c *proxyConn) reset() {
	for _, nc := range []net.Conn{c.client, c.server} {
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close sends RST
		}
		if nc != nil {
			_ = nc.Close()
		}
	}
}

// close closes both ends gracefully: bytes already written are delivered.
func (c *proxyConn) close() {
	_ = c.client.Close()
	if c.server != nil {
		_ = c.server.Close()
	}
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		pc := &proxyConn{client: c}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			pc.reset()
			return
		}
		p.conns[pc] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(pc)
	}
}

// wait blocks while cond holds for the current fault, and returns false
// when the proxy closed.
func (p *proxy) wait(cond func(netFault) bool) bool {
	for {
		p.mu.Lock()
		f, ch, closed := p.fault, p.changed, p.closed
		p.mu.Unlock()
		if closed {
			return false
		}
		if !cond(f) {
			return true
		}
		select {
		case <-ch:
		case <-p.done:
			return false
		}
	}
}

func (p *proxy) current() netFault {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fault
}

func (p *proxy) serve(pc *proxyConn) {
	defer p.wg.Done()
	refused := false
	defer func() {
		p.mu.Lock()
		delete(p.conns, pc)
		p.mu.Unlock()
		if refused {
			pc.reset()
		} else {
			pc.close()
		}
	}()
	if p.current().Refuse {
		refused = true
		return
	}
	// A partition holds the connection attempt (SYNs are retransmitted).
	if !p.wait(func(f netFault) bool { return f.StallUp || f.StallDown }) {
		return
	}
	p.mu.Lock()
	target := p.target
	p.mu.Unlock()
	server, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return // the client sees a reset, as from a refused connection
	}
	p.mu.Lock()
	pc.server = server
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(server, pc.client, true) }()
	go func() { defer wg.Done(); p.pipe(pc.client, server, false) }()
	wg.Wait()
}

// pipe copies src to dst under the proxy's faults; up says the direction.
func (p *proxy) pipe(dst, src net.Conn, up bool) {
	stalled := func(f netFault) bool {
		if up {
			return f.StallUp
		}
		return f.StallDown
	}
	buf := make([]byte, 32<<10)
	for {
		if !p.wait(stalled) {
			return
		}
		n, err := src.Read(buf)
		if n > 0 {
			readAt := time.Now()
			// Bytes read just before a stall began are held too.
			if !p.wait(stalled) {
				return
			}
			f := p.current()
			wait := time.Until(readAt.Add(f.Latency))
			if f.Rate > 0 {
				// The bytes arrive once the link has carried them.
				wait = max(wait, 0) + time.Duration(int64(n)*int64(time.Second)/int64(f.Rate))
			}
			if !p.sleep(wait) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
					// Keep the other direction going until it ends too.
					return
				}
			}
			// A reset or a closed connection: end both directions.
			_ = src.Close()
			_ = dst.Close()
			return
		}
	}
}

func (p *proxy) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.done:
		return false
	}
}
