// Package redistest runs throwaway redis-server processes for tests.
//
// Each server listens on 127.0.0.1 on a free port, keeps nothing on disk
// (--save "" --appendonly no) and is killed when the test ends. Tests can
// kill a server mid-test to simulate Redis going away, and restart it on the
// same address.
//
// When redis-server is not installed, Start skips the test, or fails it when
// the environment variable CI is "true" so that continuous integration cannot
// silently skip the Redis tests.
//
// # Security considerations
//
// The servers have no password and no TLS; they bind to 127.0.0.1 only and
// must only ever hold test data.
package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/internal/testenv"
)

// startTimeout bounds how long Start waits for a new server to answer PING.
const startTimeout = 15 * time.Second

// Server is one redis-server process. Its methods are safe for concurrent use.
type Server struct {
	// Addr is the server's host:port (127.0.0.1:N). It stays the same
	// across Restart.
	Addr string

	t    testing.TB
	bin  string
	args []string

	mu     sync.Mutex    // guards the fields below
	cmd    *exec.Cmd     // nil while killed
	exited chan struct{} // closed when cmd has exited
	logs   syncBuffer    // the server's combined output, for failure reports
}

// Start runs a redis-server on a free loopback port and returns once it
// answers PING. Extra arguments are appended to the command line (for
// example "--cluster-enabled", "yes"). The server is killed when the test
// ends.
func Start(t testing.TB, extraArgs ...string) *Server {
	t.Helper()
	bin := lookBin(t)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: pick port: %v", err)
		}
		s := &Server{
			Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			t:    t,
			bin:  bin,
		}
		s.args = append([]string{
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--save", "",
			"--appendonly", "no",
			"--dir", t.TempDir(),
		}, extraArgs...)
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.Kill)
			return s
		}
	}
	t.Fatalf("redistest: start redis-server: %v", lastErr)
	return nil
}

// lookBin finds redis-server or skips (fails under CI=true) the test.
func lookBin(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err == nil {
		return bin
	}
	testenv.SkipOrFailInCI(t, "redistest: redis-server not found (apt-get install redis-server): %v", err)
	return ""
}

// StartSentinel runs a Redis Sentinel monitoring master under the name
// masterName with a quorum of 1. Use it with redis.NewFailoverClient.
func StartSentinel(t testing.TB, master *Server, masterName string) *Server {
	t.Helper()
	host, port, err := net.SplitHostPort(master.Addr)
	if err != nil {
		t.Fatalf("redistest: master address: %v", err)
	}
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	text := fmt.Sprintf("sentinel monitor %s %s %s 1\n", masterName, host, port)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatalf("redistest: write sentinel config: %v", err)
	}
	bin := lookBin(t)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p, err := freePort()
		if err != nil {
			t.Fatalf("redistest: pick port: %v", err)
		}
		s := &Server{
			Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(p)),
			t:    t,
			bin:  bin,
			args: []string{conf, "--sentinel", "--port", strconv.Itoa(p), "--bind", "127.0.0.1"},
		}
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.Kill)
			return s
		}
	}
	t.Fatalf("redistest: start sentinel: %v", lastErr)
	return nil
}

// start launches the process and waits for PING.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	s.logs.Reset()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout = &s.logs
	cmd.Stderr = &s.logs
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	if err := waitPing(s.Addr, exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%w; server output:\n%s", err, s.logs.String())
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it to
// exit. Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd, s.exited = nil, nil
}

// Restart starts a killed server again on the same address, empty. It
// fails the test if the server cannot be started.
func (s *Server) Restart() {
	s.t.Helper()
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond) // the port may linger briefly
	}
	s.t.Fatalf("redistest: restart redis-server: %v", err)
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitPing polls addr with PING until it answers +PONG, the process exits
// or startTimeout passes.
func waitPing(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited during start-up")
		default:
		}
		if ping(addr) == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("redis-server at %s did not answer PING within %v", addr, startTimeout)
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("unexpected PING reply %q", strings.TrimSpace(line))
	}
	return nil
}

// syncBuffer is a bytes.Buffer safe for concurrent use, so that the
// process's output can be collected while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}
