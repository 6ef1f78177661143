package reliability

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic/internal/testkit/testdb"
)

// commitProxy is a TCP proxy between clients and PostgreSQL that reads the
// wire protocol and, with probability dropRate, cuts the connection right
// after the server acknowledged the COMMIT of a SERIALIZABLE transaction (a
// workflow step) and before the client sees the acknowledgement. The step
// committed, but its worker gets a connection error from Commit: the
// outcome is unknown to it, as after a network failure at the worst moment.
type commitProxy struct {
	ln       net.Listener
	network  string
	upstream string
	dropRate float64

	commits atomic.Int64 // serializable commits acknowledged by the server
	drops   atomic.Int64 // of which the acknowledgement was dropped

	// down refuses new connections (see outage).
	down atomic.Bool

	// cut, when set, is asked about every statement a client executes;
	// when it returns true the connection is cut before the server sees
	// the statement (see cutStatement).
	cutMu sync.Mutex
	cut   func(sql string) bool
	cuts  atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// startCommitProxy listens on a free local port and forwards to the server
// of cfg; it is closed when the test ends.
func startCommitProxy(t *testing.T, cfg *pgxpool.Config, dropRate float64) *commitProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &commitProxy{ln: ln, dropRate: dropRate, conns: map[net.Conn]struct{}{}}
	host, port := cfg.ConnConfig.Host, cfg.ConnConfig.Port
	if strings.HasPrefix(host, "/") {
		p.network, p.upstream = "unix", fmt.Sprintf("%s/.s.PGSQL.%d", host, port)
	} else {
		p.network, p.upstream = "tcp", net.JoinHostPort(host, strconv.Itoa(int(port)))
	}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// startTestProxy starts a proxy to the test database and checks that a
// client gets through it; it skips the test when the server cannot be
// reached in plain text (the proxy reads the protocol).
func startTestProxy(t *testing.T, dropRate float64) *commitProxy {
	t.Helper()
	proxy := startCommitProxy(t, poolConfig(t, testURL(), "", 1), dropRate)
	probeCfg := poolConfig(t, testURL(), "", 2)
	proxy.route(probeCfg)
	probe, err := pgxpool.NewWithConfig(context.Background(), probeCfg)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = probe.Ping(ctx)
		cancel()
		probe.Close()
	}
	if err != nil {
		t.Skipf("cannot reach the database through a plain-text proxy (does the server require TLS?): %v", err)
	}
	return proxy
}

// route points cfg at the proxy, without TLS (the proxy reads the protocol).
func (p *commitProxy) route(cfg *pgxpool.Config) {
	addr := p.ln.Addr().(*net.TCPAddr)
	cfg.ConnConfig.Host = "127.0.0.1"
	cfg.ConnConfig.Port = uint16(addr.Port)
	cfg.ConnConfig.TLSConfig = nil
	cfg.ConnConfig.Fallbacks = nil
}

func (p *commitProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// outage cuts every connection through the proxy and refuses new ones
// until the returned function is called: the database is unreachable.
func (p *commitProxy) outage() (end func()) {
	p.down.Store(true)
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	return func() { p.down.Store(false) }
}

// cutStatement arms the proxy: the next statement whose SQL matches is not
// delivered; its connection is cut instead, as by a network failure.
func (p *commitProxy) cutStatement(match func(sql string) bool) {
	p.cutMu.Lock()
	defer p.cutMu.Unlock()
	p.cut = match
}

// shouldCut reports (once per arming) whether sql is the statement to cut.
func (p *commitProxy) shouldCut(sql string) bool {
	p.cutMu.Lock()
	defer p.cutMu.Unlock()
	if p.cut == nil || !p.cut(sql) {
		return false
	}
	p.cut = nil
	p.cuts.Add(1)
	return true
}

func (p *commitProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *commitProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *commitProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(client)
		}()
	}
}

func (p *commitProxy) serve(client net.Conn) {
	if p.down.Load() {
		_ = client.Close()
		return
	}
	server, err := net.Dial(p.network, p.upstream)
	if err != nil {
		_ = client.Close()
		return
	}
	if !p.track(client) || !p.track(server) {
		_ = client.Close()
		_ = server.Close()
		return
	}
	defer p.untrack(client)
	defer p.untrack(server)

	var serializable atomic.Bool
	done := make(chan struct{}, 2)
	// client -> server: note when a SERIALIZABLE transaction begins.
	go func() {
		defer func() { done <- struct{}{} }()
		// The startup packet has no type byte.
		var hdr [4]byte
		if _, err := io.ReadFull(client, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n < 4 || n > 1<<20 {
			return
		}
		body := make([]byte, n-4)
		if _, err := io.ReadFull(client, body); err != nil {
			return
		}
		if _, err := server.Write(append(hdr[:], body...)); err != nil {
			return
		}
		prepared := map[string]string{} // statement name -> SQL
		for {
			typ, msg, err := readMessage(client)
			if err != nil {
				return
			}
			var sql string
			switch typ {
			case 'Q': // simple query: the SQL
				sql = cstrings(msg[5:], 1)[0]
			case 'P': // parse: statement name, SQL, ...
				f := cstrings(msg[5:], 2)
				sql = f[1]
				prepared[f[0]] = sql
			case 'B': // bind: portal, statement name, ...
				sql = prepared[cstrings(msg[5:], 2)[1]]
			}
			if strings.Contains(strings.ToLower(sql), "isolation level serializable") {
				serializable.Store(true)
			}
			if sql != "" && p.shouldCut(sql) {
				return // closes both connections; the server never sees it
			}
			if _, err := server.Write(msg); err != nil {
				return
			}
		}
	}()
	// server -> client: drop the acknowledgement of a serializable COMMIT.
	go func() {
		defer func() { done <- struct{}{} }()
		for {
			typ, msg, err := readMessage(server)
			if err != nil {
				return
			}
			if typ == 'C' {
				tag := string(bytes.TrimRight(msg[5:], "\x00"))
				if tag == "COMMIT" && serializable.Swap(false) {
					p.commits.Add(1)
					if rand.Float64() < p.dropRate {
						p.drops.Add(1)
						return // closes both connections; the client never sees COMMIT
					}
				} else if tag == "ROLLBACK" {
					serializable.Store(false)
				}
			}
			if _, err := client.Write(msg); err != nil {
				return
			}
		}
	}()
	<-done
}

// cstrings returns the first n NUL-terminated strings of b (empty ones
// past its end).
func cstrings(b []byte, n int) []string {
	out := make([]string, n)
	for i := range out {
		j := bytes.IndexByte(b, 0)
		if j < 0 {
			out[i] = string(b)
			break
		}
		out[i], b = string(b[:j]), b[j+1:]
	}
	return out
}

// readMessage reads one typed protocol message and returns its type and the
// whole message (type, length and body).
func readMessage(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[1:]))
	if n < 4 || n > 1<<30 {
		return 0, nil, fmt.Errorf("bad message length %d", n)
	}
	msg := make([]byte, 1+n)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(r, msg[5:]); err != nil {
		return 0, nil, err
	}
	return hdr[0], msg, nil
}

// TestLostCommitAcknowledgement: two engines work N chaos runs through a
// proxy that, for one step commit in ten, cuts the connection after
// PostgreSQL acknowledged the COMMIT. The step did commit; the worker sees
// a connection error. The run must carry on after that step, not run it
// again: every run succeeds with each effect exactly once.
func TestLostCommitAcknowledgement(t *testing.T) {
	started := time.Now()
	n := pick(30, 150)
	drv := testdb.New(t, testdb.Options{MaxConns: 6})
	admin := drv.Pool()
	schema := drv.Schema()
	createScenarioTables(t, admin, schema)

	ef := &effector{schema: schema, side: admin, actor: "engine", sleep: 10 * time.Millisecond, maxAttempts: 25}
	ids := enqueueChaos(t, drv, ef, n)

	proxy := startTestProxy(t, 0.1)

	set := startEngines(t, testURL(), schema, "acidic-reliability-proxy", 2, 4, ef, resilientEngineConfig, proxy.route)

	ok, saw := waitChaos(t, admin, schema, n, stallTimeout(), pick(3*time.Minute, 10*time.Minute))
	if !ok {
		t.Errorf("did not finish: %s; unfinished runs:%s\n%s", saw, describeStuck(t, admin, schema), set.logSummary())
	}
	dups, lost := verifyChaos(t, admin, schema, ids)
	if proxy.drops.Load() == 0 {
		t.Errorf("no commit acknowledgement was dropped (%d serializable commits seen)", proxy.commits.Load())
	}
	t.Logf("reliability: scenario=lost-commit-ack step_commits=%d acks_dropped=%d step_failures=%d",
		proxy.commits.Load(), proxy.drops.Load(), set.logged("workflow: step failed"))
	if t.Failed() {
		t.Logf("%s", set.logSummary())
	}
	report(t, counts{scenario: "lost-commit-ack", runs: n, kills: int(proxy.drops.Load()), txRetries: set.txRetries(), duplicates: dups, lost: lost}, started)
}
