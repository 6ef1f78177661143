package bench

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// CPU accounting. Throughput on a shared machine moves with whatever else
// runs there; CPU time per operation moves much less, and it says where the
// time goes: in this process (the engine and pgx) or in the PostgreSQL
// backends serving it. The backends are found by the pool's
// application_name (the bench schema's name) and read from /proc, so the
// server side is known only when the database runs on this machine.

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

type cpuSnap struct {
	at      time.Time
	client  time.Duration
	server  map[int]time.Duration // backend pid → CPU so far
	serverK bool                  // the backends could be read
}

// cpuSnapshot reads this process's CPU time and that of every backend
// connected with the bench's application_name.
func (b *bench) cpuSnapshot(ctx context.Context) cpuSnap {
	s := cpuSnap{at: time.Now(), client: selfCPU(), server: map[int]time.Duration{}}
	if b.pool == nil {
		return s // SQLite runs in this process: its CPU is the client's
	}
	rows, err := b.pool.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = $1", b.schema)
	if err != nil {
		return s
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) != nil {
			return s
		}
		if t, ok := backendCPU(pid); ok {
			s.server[pid] = t
			s.serverK = true
		}
	}
	return s
}

// cpuUse is the CPU spent between two snapshots, or summed over several
// measurements. The zero value is an empty sum.
type cpuUse struct {
	client, server time.Duration
	serverKnown    bool
	bad            bool // a measurement was implausible: report nothing
}

func (s cpuSnap) since(before cpuSnap) cpuUse {
	u := cpuUse{client: s.client - before.client, serverKnown: s.serverK}
	for pid, t := range s.server {
		u.server += t - before.server[pid] // a backend that connected since counts from 0
	}
	// Neither side can use more than every CPU for the whole interval; a
	// virtual machine that was paused can say otherwise. Such a sample is
	// dropped rather than reported.
	limit := time.Duration(float64(s.at.Sub(before.at)) * float64(runtime.NumCPU()) * 1.1)
	if u.client < 0 || u.server < 0 || u.client > limit || u.server > limit {
		return cpuUse{bad: true}
	}
	return u
}

func (u cpuUse) add(o cpuUse) cpuUse {
	return cpuUse{client: u.client + o.client, server: u.server + o.server,
		serverKnown: u.serverKnown || o.serverKnown, bad: u.bad || o.bad}
}

// per returns µs of client and server CPU per operation; zero when unknown.
func (u cpuUse) per(n int) (client, server float64) {
	if u.bad || n == 0 {
		return 0, 0
	}
	client = float64(u.client.Microseconds()) / float64(n)
	if u.serverKnown {
		server = float64(u.server.Microseconds()) / float64(n)
	}
	return client, server
}

// backendCPU reads utime+stime of a local PostgreSQL process.
func backendCPU(pid int) (time.Duration, bool) {
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil || !strings.HasPrefix(string(comm), "postgres") {
		return 0, false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command may hold spaces; fields start after its closing paren.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * clockTick, true
}
