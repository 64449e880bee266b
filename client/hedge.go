package client

import (
	"context"
	"sync"
	"time"
)

// hedged runs a data-plane call with hedging: when the running attempt has
// not answered within HedgeAfter, the next-nearest untried node gets the same
// request too, and the first success wins; the others are cancelled. A
// failure with nothing else in flight fails over as serial does. Every
// attempt, hedged or not, counts against MaxAttempts. It returns only after
// every attempt it started has ended, so no goroutine outlives the call.
func (s *call[Req, Resp]) hedged(ctx context.Context) (Resp, error) {
	var zero Resp
	scope, cancel := context.WithCancel(ctx)
	results := make(chan result[Resp], s.c.cfg.MaxAttempts)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	launched, inflight := 0, 0
	launch := func(hedge bool) {
		r, _ := s.next()
		idx := s.begin(r, hedge)
		launched++
		inflight++
		wg.Go(func() { results <- s.attempt(scope, ctx, r, idx) })
	}
	launch(false)
	timer := time.NewTimer(s.c.cfg.HedgeAfter)
	defer timer.Stop()
	for {
		select {
		case res := <-results:
			inflight--
			if res.err == nil || !res.retry {
				s.finish(&res)
				if res.err != nil {
					return zero, res.err
				}
				return res.resp, nil
			}
			if inflight > 0 {
				continue // a hedge is still racing; let it answer
			}
			if launched >= s.c.cfg.MaxAttempts {
				s.finish(&res)
				return zero, res.err
			}
			if !s.untriedLeft() {
				if err := sleep(ctx, s.c.backoff(launched)); err != nil {
					s.finish(&res)
					return zero, ctxError(err, launched, res.err)
				}
			}
			launch(false)
			timer.Reset(s.c.cfg.HedgeAfter)
		case <-timer.C:
			if launched < s.c.cfg.MaxAttempts && s.untriedLeft() {
				launch(true)
				timer.Reset(s.c.cfg.HedgeAfter)
			}
		}
	}
}

// untriedLeft reports whether some route has not been tried by this call;
// hedges go only to new nodes, never twice to the same one.
func (s *call[Req, Resp]) untriedLeft() bool {
	return s.v.pick(s.tried, time.Now().UnixNano()) >= 0
}
