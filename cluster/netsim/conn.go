package netsim

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// chunk is data in flight, deliverable at due.
type chunk struct {
	due  time.Time
	data []byte
	err  error
}

// delayConn delays writes and reads by a sampled one-way latency each,
// like a link with latency and unlimited bandwidth: data keeps its order,
// a write returns at once, and data is delivered when due.
type delayConn struct {
	net.Conn
	delay func() time.Duration

	wch     chan chunk
	rch     chan chunk
	done    chan struct{}
	once    sync.Once
	werr    atomic.Pointer[error]
	lastDue [2]time.Time // write, read: keeps due times monotonic (FIFO)
	wmu     sync.Mutex   // serialises Write (lastDue[0], ordering into wch)

	rmu     sync.Mutex // serialises Read; guards pend
	pend    chunk
	hasPend bool
	rdl     atomic.Pointer[time.Time] // read deadline; nil none
}

const queueLen = 1024

func newDelayConn(c net.Conn, delay func() time.Duration) *delayConn {
	d := &delayConn{Conn: c, delay: delay, wch: make(chan chunk, queueLen),
		rch: make(chan chunk, queueLen), done: make(chan struct{})}
	go d.writeLoop()
	go d.readLoop()
	return d
}

func (d *delayConn) due(i int) time.Time {
	t := time.Now().Add(d.delay())
	if t.Before(d.lastDue[i]) {
		t = d.lastDue[i]
	}
	d.lastDue[i] = t
	return t
}

// Write queues a copy of p for delivery after the latency.
func (d *delayConn) Write(p []byte) (int, error) {
	if e := d.werr.Load(); e != nil {
		return 0, *e
	}
	d.wmu.Lock()
	defer d.wmu.Unlock()
	select {
	case <-d.done:
		return 0, net.ErrClosed
	default:
	}
	c := chunk{due: d.due(0), data: append([]byte(nil), p...)}
	select {
	case d.wch <- c:
		return len(p), nil
	case <-d.done:
		return 0, net.ErrClosed
	}
}

func (d *delayConn) writeLoop() {
	for {
		select {
		case <-d.done:
			return
		case c := <-d.wch:
			if !d.sleepUntil(c.due) {
				return
			}
			if _, err := d.Conn.Write(c.data); err != nil {
				d.werr.Store(&err)
				d.Conn.Close()
				return
			}
		}
	}
}

func (d *delayConn) readLoop() {
	buf := make([]byte, 32<<10)
	for {
		k, err := d.Conn.Read(buf)
		c := chunk{data: append([]byte(nil), buf[:k]...), err: err}
		c.due = d.due(1) // only this goroutine touches lastDue[1]
		select {
		case d.rch <- c:
		case <-d.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// Read returns data once it is due, honouring the read deadline.
func (d *delayConn) Read(p []byte) (int, error) {
	d.rmu.Lock()
	defer d.rmu.Unlock()
	var deadline <-chan time.Time
	if dl := d.rdl.Load(); dl != nil {
		t := time.NewTimer(time.Until(*dl))
		defer t.Stop()
		deadline = t.C
	}
	if !d.hasPend {
		select {
		case d.pend = <-d.rch:
			d.hasPend = true
		case <-deadline:
			return 0, os.ErrDeadlineExceeded
		case <-d.done:
			return 0, net.ErrClosed
		}
	}
	wait := time.NewTimer(time.Until(d.pend.due))
	defer wait.Stop()
	select {
	case <-wait.C:
	case <-deadline:
		return 0, os.ErrDeadlineExceeded // the chunk stays pending
	case <-d.done:
		return 0, net.ErrClosed
	}
	k := copy(p, d.pend.data)
	d.pend.data = d.pend.data[k:]
	if len(d.pend.data) > 0 {
		return k, nil
	}
	if d.pend.err != nil {
		return k, d.pend.err // sticky: the read loop has ended
	}
	d.hasPend = false
	return k, nil
}

// sleepUntil waits for t or Close; false on Close.
func (d *delayConn) sleepUntil(t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-d.done:
		return false
	}
}

// Close drops data still in flight, as a crashed link would.
func (d *delayConn) Close() error {
	err := net.ErrClosed
	d.once.Do(func() {
		close(d.done)
		err = d.Conn.Close()
	})
	return err
}

// SetDeadline sets the read deadline; writes never block on the network
// here, so write deadlines do not apply.
func (d *delayConn) SetDeadline(t time.Time) error { return d.SetReadDeadline(t) }

// SetReadDeadline implements net.Conn.
func (d *delayConn) SetReadDeadline(t time.Time) error {
	if t.IsZero() {
		d.rdl.Store(nil)
	} else {
		d.rdl.Store(&t)
	}
	return nil
}

// SetWriteDeadline implements net.Conn (a no-op, see SetDeadline).
func (d *delayConn) SetWriteDeadline(time.Time) error { return nil }
