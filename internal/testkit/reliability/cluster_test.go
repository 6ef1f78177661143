package reliability

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// pgCluster is a throwaway PostgreSQL cluster the test owns: initdb into a
// temporary directory, pg_ctl start on a free port. As root, initdb and
// pg_ctl refuse to run, so they run as the postgres OS user (runuser) on a
// directory that user owns.
type pgCluster struct {
	t      *testing.T
	bindir string
	dir    string // owned by the cluster's user; holds data/, the log and the socket
	port   int
	runAs  string // OS user to run the server as; empty for the current user
	// runuser is the path of runuser, with runAs.
	runuser string
}

// findRunuser finds runuser on PATH or in the sbin directories a root PATH
// may leave out.
func findRunuser() (string, bool) {
	if p, err := exec.LookPath("runuser"); err == nil {
		return p, true
	}
	for _, p := range []string{"/usr/sbin/runuser", "/sbin/runuser"} {
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	return "", false
}

// findBindir returns a directory holding initdb, pg_ctl and postgres:
// $ACIDIC_PG_BINDIR, the directory of initdb on PATH, or the newest
// /usr/lib/postgresql/*/bin.
func findBindir() (string, bool) {
	ok := func(d string) bool {
		for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
			if _, err := os.Stat(filepath.Join(d, b)); err != nil {
				return false
			}
		}
		return true
	}
	if d := os.Getenv("ACIDIC_PG_BINDIR"); d != "" && ok(d) {
		return d, true
	}
	if p, err := exec.LookPath("initdb"); err == nil && ok(filepath.Dir(p)) {
		return filepath.Dir(p), true
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		if ok(dirs[i]) {
			return dirs[i], true
		}
	}
	return "", false
}

// clusterUnavailable skips the test, or fails it under CI (CI=true), where
// the scenario must not go missing unnoticed: scripts/db.sh installs the
// server binaries there.
func clusterUnavailable(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why + " (CI=true: this scenario must run)")
	}
	t.Skip(why)
}

// startCluster initialises and starts a cluster, stopped (-m immediate) and
// removed when the test ends. It skips the test (fails it under CI) when no
// PostgreSQL server binaries are installed, or when running as root without
// a postgres user.
func startCluster(t *testing.T) *pgCluster {
	t.Helper()
	bindir, ok := findBindir()
	if !ok {
		clusterUnavailable(t, "no PostgreSQL server binaries: set ACIDIC_PG_BINDIR to a directory holding initdb, pg_ctl and postgres "+
			"(scripts/db.sh exports it), or put initdb on PATH")
	}
	c := &pgCluster{t: t, bindir: bindir}
	var uid, gid int = -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			clusterUnavailable(t, "running as root, and initdb refuses root, but there is no postgres OS user to run the cluster as")
		}
		runuser, ok := findRunuser()
		if !ok {
			clusterUnavailable(t, "running as root, and initdb refuses root, but runuser is not installed to run it as postgres")
		}
		c.runuser = runuser
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		c.runAs = "postgres"
	}
	// Not t.TempDir(): its parents are private to the test's user, and the
	// postgres user must reach the directory.
	dir, err := os.MkdirTemp("", "acidic-reliability-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if c.runAs != "" {
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatalf("chown %s to postgres: %v", dir, err)
		}
	}
	if out, err := c.run("initdb", "-D", c.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	for attempt := 0; ; attempt++ {
		c.port = freePort(t)
		out, err := c.ctl("start")
		if err == nil {
			break
		}
		if attempt == 5 {
			t.Fatalf("pg_ctl start: %v\n%s\nserver log:\n%s", err, out, c.log())
		}
	}
	t.Cleanup(func() {
		if out, err := c.ctl("stop", "-m", "immediate"); err != nil {
			t.Logf("pg_ctl stop: %v\n%s", err, out)
		}
	})
	return c
}

func (c *pgCluster) data() string { return filepath.Join(c.dir, "data") }

// URL is the cluster's connection string (database postgres, user postgres).
func (c *pgCluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// run runs a server binary as the cluster's user, from its directory.
func (c *pgCluster) run(bin string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bindir, bin)
	var cmd *exec.Cmd
	if c.runAs != "" {
		cmd = exec.Command(c.runuser, append([]string{"-u", c.runAs, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// ctl runs pg_ctl with the cluster's data directory, log and options.
func (c *pgCluster) ctl(action string, extra ...string) ([]byte, error) {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60 -c shared_buffers=16MB", c.port, c.dir)
	args := append([]string{action, "-D", c.data(), "-l", filepath.Join(c.dir, "server.log"), "-w", "-t", "60", "-o", opts}, extra...)
	return c.run("pg_ctl", args...)
}

// restart stops the server with the shutdown mode (fast: backends are
// terminated; immediate: the server crashes and recovers from WAL) and
// starts it again, waiting until it accepts connections.
func (c *pgCluster) restart(mode string) error {
	out, err := c.ctl("restart", "-m", mode)
	if err != nil {
		return fmt.Errorf("pg_ctl restart -m %s: %w\n%s", mode, err, out)
	}
	return nil
}

// log returns the tail of the server log.
func (c *pgCluster) log() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// freePort returns a port in 55432..56431 nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		port := 55432 + rand.IntN(1000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		_ = l.Close()
		return port
	}
	t.Fatal("no free port in 55432..56431")
	return 0
}
