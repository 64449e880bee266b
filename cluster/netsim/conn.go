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
// a write returns at once (until queueLen chunks wait, then it blocks as
// on a full send buffer), and data is delivered when due and while no
// fault cuts its direction; held data waits, it is never dropped.
type delayConn struct {
	net.Conn
	sim      *Sim
	src, dst place // the dialer's and the far end's
	wasHeld  bool  // cut since the last heal; guarded by sim.mu
	doomed   bool  // a heal is resetting it; guarded by sim.mu

	wch     chan chunk
	rch     chan chunk
	done    chan struct{}
	once    sync.Once
	werr    atomic.Pointer[error]
	doneErr atomic.Pointer[error] // what Read and Write return once done
	lastDue [2]time.Time          // write, read: keeps due times monotonic (FIFO)
	wmu     sync.Mutex            // serialises Write (lastDue[0], ordering into wch)

	rmu     sync.Mutex // serialises Read; guards pend
	pend    chunk
	hasPend bool
	rdl     atomic.Pointer[time.Time] // read deadline; nil none
	wdl     atomic.Pointer[time.Time] // write deadline; nil none
}

const queueLen = 1024

// wrap starts delaying c, dialed from src to dst, and tracks it for heals.
func (s *Sim) wrap(c net.Conn, src, dst place) *delayConn {
	d := &delayConn{Conn: c, sim: s, src: src, dst: dst, wch: make(chan chunk, queueLen),
		rch: make(chan chunk, queueLen), done: make(chan struct{})}
	s.track(d)
	go d.writeLoop()
	go d.readLoop()
	return d
}

func (d *delayConn) due(i int) time.Time {
	t := time.Now().Add(d.sim.Latency(d.src.region, d.dst.region).sample())
	if t.Before(d.lastDue[i]) {
		t = d.lastDue[i]
	}
	d.lastDue[i] = t
	return t
}

// Write queues a copy of p for delivery after the latency. It blocks only
// when the queue is full (a long hold), until the write deadline.
func (d *delayConn) Write(p []byte) (int, error) {
	if e := d.werr.Load(); e != nil {
		return 0, *e
	}
	d.wmu.Lock()
	defer d.wmu.Unlock()
	select {
	case <-d.done:
		return 0, d.closedErr()
	default:
	}
	c := chunk{due: d.due(0), data: append([]byte(nil), p...)}
	select {
	case d.wch <- c:
		return len(p), nil
	default:
	}
	deadline, stop := timerFor(d.wdl.Load())
	defer stop()
	select {
	case d.wch <- c:
		return len(p), nil
	case <-deadline:
		return 0, os.ErrDeadlineExceeded
	case <-d.done:
		return 0, d.closedErr()
	}
}

// timerFor returns a channel that fires at *dl (never if dl is nil).
func timerFor(dl *time.Time) (<-chan time.Time, func()) {
	if dl == nil {
		return nil, func() {}
	}
	t := time.NewTimer(time.Until(*dl))
	return t.C, func() { t.Stop() }
}

// closedErr is what operations return once the connection is done.
func (d *delayConn) closedErr() error {
	if e := d.doneErr.Load(); e != nil {
		return *e
	}
	return net.ErrClosed
}

// waitOpen waits while a fault cuts src -> dst: nil once open,
// os.ErrDeadlineExceeded at deadline, the close error on Close.
func (d *delayConn) waitOpen(src, dst place, deadline <-chan time.Time) error {
	for {
		cut, doomed, changed := d.sim.connState(d, src, dst)
		if doomed {
			return ErrReset
		}
		if !cut {
			return nil
		}
		select {
		case <-changed:
		case <-deadline:
			return os.ErrDeadlineExceeded
		case <-d.done:
			return d.closedErr()
		}
	}
}

func (d *delayConn) writeLoop() {
	for {
		select {
		case <-d.done:
			return
		case c := <-d.wch:
			if !d.sleepUntil(c.due) || d.waitOpen(d.src, d.dst, nil) != nil {
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

// Read returns data once it is due and no fault cuts the far end off,
// honouring the read deadline.
func (d *delayConn) Read(p []byte) (int, error) {
	d.rmu.Lock()
	defer d.rmu.Unlock()
	deadline, stop := timerFor(d.rdl.Load())
	defer stop()
	if !d.hasPend {
		select {
		case d.pend = <-d.rch:
			d.hasPend = true
		case <-deadline:
			return 0, os.ErrDeadlineExceeded
		case <-d.done:
			return 0, d.closedErr()
		}
	}
	wait := time.NewTimer(time.Until(d.pend.due))
	defer wait.Stop()
	select {
	case <-wait.C:
	case <-deadline:
		return 0, os.ErrDeadlineExceeded // the chunk stays pending
	case <-d.done:
		return 0, d.closedErr()
	}
	// Held chunks (an EOF too: a FIN is a packet like any other) stay
	// pending until the fault heals.
	if err := d.waitOpen(d.dst, d.src, deadline); err != nil {
		return 0, err
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
		d.sim.untrack(d)
	})
	return err
}

// reset ends the connection as an RST would: the far end's reads fail
// with ECONNRESET (linger 0 sends an RST, not a FIN) and ours with ErrReset.
func (d *delayConn) reset() {
	e := ErrReset
	d.doneErr.Store(&e)
	if tc, ok := d.Conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = d.Close()
}

// SetDeadline implements net.Conn.
func (d *delayConn) SetDeadline(t time.Time) error {
	_ = d.SetReadDeadline(t)
	return d.SetWriteDeadline(t)
}

// SetReadDeadline implements net.Conn.
func (d *delayConn) SetReadDeadline(t time.Time) error {
	storeDeadline(&d.rdl, t)
	return nil
}

// SetWriteDeadline implements net.Conn; a write waits only when data is
// held long enough to fill the queue.
func (d *delayConn) SetWriteDeadline(t time.Time) error {
	storeDeadline(&d.wdl, t)
	return nil
}

func storeDeadline(p *atomic.Pointer[time.Time], t time.Time) {
	if t.IsZero() {
		p.Store(nil)
	} else {
		p.Store(&t)
	}
}
