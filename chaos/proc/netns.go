package proc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns add` pins named namespaces.
const netnsDir = "/run/netns"

// netns is the harness's own network namespace. Nothing in it is reachable
// from the root namespace, so every socket the harness uses (node
// processes, clients, probes) is made by a thread that entered it: a
// socket stays in the namespace it was created in, whichever thread later
// reads or writes it.
type netns struct {
	name string

	mu     sync.RWMutex // guards fd against Close while a thread enters it
	fd     *os.File     // /run/netns/<name>, held for setns(2)
	closed bool

	reqs chan func() // run on the spawner thread, inside the namespace
	stop chan struct{}
	done chan struct{}
}

// createNetns adds the namespace, brings its loopback up and starts the
// spawner thread. Inside a fresh namespace lo carries 127.0.0.1/8, whose
// local route covers all of 127/8, so node r/n binds 127.0.r.n directly.
func createNetns(ctx context.Context, name string) (*netns, error) {
	if err := run(ctx, "ip", "netns", "add", name); err != nil {
		return nil, fmt.Errorf("create network namespace %s: %w", name, err)
	}
	n := &netns{name: name, reqs: make(chan func()), stop: make(chan struct{}), done: make(chan struct{})}
	if err := run(ctx, "ip", "-n", name, "link", "set", "lo", "up"); err != nil {
		_ = run(context.WithoutCancel(ctx), "ip", "netns", "delete", name)
		return nil, fmt.Errorf("bring up lo in %s: %w", name, err)
	}
	f, err := os.Open(filepath.Join(netnsDir, name))
	if err != nil {
		_ = run(context.WithoutCancel(ctx), "ip", "netns", "delete", name)
		return nil, fmt.Errorf("open network namespace %s: %w", name, err)
	}
	n.fd = f
	ready := make(chan error, 1)
	go n.spawner(ready)
	if err := <-ready; err != nil {
		n.fd.Close()
		_ = run(context.WithoutCancel(ctx), "ip", "netns", "delete", name)
		return nil, err
	}
	return n, nil
}

// enter moves the calling goroutine's OS thread into the namespace. The
// caller must have locked the thread and must never unlock it: the Go
// runtime then ends the thread with the goroutine, so a thread inside the
// namespace never runs anyone else's code.
func (n *netns) enter() error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		return fmt.Errorf("network namespace %s: %w", n.name, ErrClosed)
	}
	if err := unix.Setns(int(n.fd.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter network namespace %s: %w", n.name, err)
	}
	return nil
}

// lockOffMain locks the calling goroutine to its OS thread, for good,
// unless that thread is the process's main thread: then it unlocks and
// reports false, and the caller retries on a new goroutine. The main thread
// must never enter the namespace: /proc/PID/ns/net shows the main
// thread's namespace, so `ip netns pids` would count this whole process as
// inside it (and Close would kill it), and a goroutine that exits locked
// on the main thread wedges that thread instead of ending it.
func lockOffMain() bool {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		runtime.UnlockOSThread()
		return false
	}
	return true
}

// spawner is the one long-lived thread inside the namespace. Node
// processes are forked from it, for two reasons: a child inherits the
// forking thread's namespace, and Pdeathsig fires when the forking thread
// (not the process) dies, so children must come from a thread that lives
// exactly as long as the harness.
func (n *netns) spawner(ready chan<- error) {
	if !lockOffMain() {
		go n.spawner(ready)
		return
	}
	defer close(n.done)
	if err := n.enter(); err != nil {
		ready <- err
		return
	}
	ready <- nil
	for {
		select {
		case f := <-n.reqs:
			f()
		case <-n.stop:
			return
		}
	}
}

// do runs f on the spawner thread and waits for it. f must not block.
func (n *netns) do(f func()) error {
	fin := make(chan struct{})
	select {
	case n.reqs <- func() { f(); close(fin) }:
		<-fin
		return nil
	case <-n.done:
		return fmt.Errorf("network namespace %s: %w", n.name, ErrClosed)
	}
}

// DialContext connects to addr from inside the namespace. Each dial gets a
// fresh thread that enters the namespace and dies with its goroutine.
func (n *netns) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	var dial func()
	dial = func() {
		if !lockOffMain() {
			go dial()
			return
		}
		if err := n.enter(); err != nil {
			ch <- result{nil, err}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		ch <- result{c, err}
	}
	go dial()
	r := <-ch
	return r.c, r.err
}

// pids lists every process inside the namespace, whoever started it.
func (n *netns) pids(ctx context.Context) ([]int, error) {
	out, err := output(ctx, "ip", "netns", "pids", n.name)
	if err != nil {
		return nil, err
	}
	return parsePIDs(out)
}

// close stops the spawner thread and deletes the namespace. Deleting a
// namespace does not end the processes inside it: the caller kills them
// first (and Pdeathsig catches any left when the spawner thread exits).
func (n *netns) close(ctx context.Context) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	close(n.stop)
	n.fd.Close()
	n.mu.Unlock()
	<-n.done
	if err := run(ctx, "ip", "netns", "delete", n.name); err != nil {
		return fmt.Errorf("delete network namespace %s: %w", n.name, err)
	}
	return nil
}

// execIn runs a command inside the namespace through `ip netns exec`.
func (n *netns) execIn(ctx context.Context, name string, args ...string) error {
	return run(ctx, "ip", append([]string{"netns", "exec", n.name, name}, args...)...)
}

// parsePIDs reads `ip netns pids` output: one decimal pid per line.
func parsePIDs(out []byte) ([]int, error) {
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("%w: pid %q in `ip netns pids` output", ErrBadOutput, f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// run runs a set-up command, folding its output into the error.
func run(ctx context.Context, name string, args ...string) error {
	_, err := output(ctx, name, args...)
	return err
}

func output(ctx context.Context, name string, args ...string) ([]byte, error) {
	return outputIn(ctx, "", name, args...)
}

// outputIn runs a command in dir and returns its stdout.
func outputIn(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
