package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/chaos/history"
	"github.com/meridiankms/meridian/client"
)

// Workload is a set of callers over one cluster. Start it with New, then
// Setup (creates the hot keys), then Run.
type Workload struct {
	cfg     Config
	clients map[string]*client.Client // by region
	runID   string

	hot     []string // symmetric keys of the data plane
	signKey string   // ECC key for Sign/Verify

	mu      sync.Mutex
	pool    []string            // control-plane keys whose CreateKey was acked
	aliases map[string]string   // alias -> last acked target
	cts     []ciphertext        // acked Encrypt results, for Decrypt
	sigs    []signature         // acked Sign results, for Verify
	pending map[string]struct{} // keys with a scheduled deletion acked
	tokens  map[string]uint64   // key id or alias name -> commit index of its acked create
}

type ciphertext struct {
	key  string // the key it was made under (Decrypt names none)
	blob []byte
	ctx  map[string]string
}

type signature struct {
	key       string
	msg, sig  []byte
	algorithm apiv1.SigningAlgorithm
}

// New checks cfg and connects one nearest-node client per region.
func New(ctx context.Context, cfg Config) (*Workload, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Workload{cfg: cfg, clients: map[string]*client.Client{}, aliases: map[string]string{},
		pending: map[string]struct{}{}, tokens: map[string]uint64{}, runID: fmt.Sprintf("r%x", rand.Uint32())}
	for _, r := range cfg.Regions {
		if _, ok := w.clients[r]; ok {
			continue
		}
		cl, err := client.New(ctx, cfg.tune(cfg.ClientConfig(r), r))
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("workload client for region %s: %w", r, err)
		}
		w.clients[r] = cl
	}
	return w, nil
}

// Close closes the clients.
func (w *Workload) Close() error {
	var errs []error
	for _, cl := range w.clients {
		errs = append(errs, cl.Close())
	}
	return errors.Join(errs...)
}

// HotKeys returns the data-plane keys (valid after Setup).
func (w *Workload) HotKeys() []string { return append([]string(nil), w.hot...) }

// Setup creates the hot keys and the signing key, retrying each create
// (with one request id, so a retry never makes a second key) until ctx
// ends. The creates are recorded like every other call.
func (w *Workload) Setup(ctx context.Context) error {
	cl := w.clients[w.cfg.Regions[0]]
	for i := 0; i < w.cfg.HotKeys; i++ {
		id, err := w.createUntil(ctx, cl, &apiv1.CreateKeyRequest{Description: fmt.Sprintf("chaos %s hot %d", w.runID, i)})
		if err != nil {
			return err
		}
		w.hot = append(w.hot, id)
	}
	id, err := w.createUntil(ctx, cl, &apiv1.CreateKeyRequest{Description: "chaos " + w.runID + " sign",
		KeySpec: apiv1.KeySpec_KEY_SPEC_ECC_NIST_P256, KeyUsage: apiv1.KeyUsage_KEY_USAGE_SIGN_VERIFY})
	if err != nil {
		return err
	}
	w.signKey = id
	return nil
}

func (w *Workload) createUntil(ctx context.Context, cl *client.Client, req *apiv1.CreateKeyRequest) (string, error) {
	req.RequestId = newRequestID()
	for {
		res, err := w.createKey(ctx, -1, cl, req)
		if err == nil {
			return res.GetKeyMetadata().GetKeyId(), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("workload setup: create %q: %w (last error: %w)", req.Description, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Run runs the callers until the duration, the op budget or ctx ends,
// and returns when every caller has returned (its call in flight ends by
// its own timeout). Setup must have succeeded.
func (w *Workload) Run(ctx context.Context) error {
	if len(w.hot) == 0 {
		return fmt.Errorf("%w: Run before Setup", ErrConfig)
	}
	// The duration ends the issuing of calls, not the calls in flight:
	// cutting those short would record outages the cluster never caused.
	pace, cancel := context.WithTimeout(ctx, w.cfg.Duration)
	defer cancel()
	interval := time.Duration(float64(time.Second) * float64(w.cfg.Clients) / w.cfg.Rate)
	var wg sync.WaitGroup
	var budget atomic.Int64
	budget.Store(int64(w.cfg.MaxOps))
	for i := 0; i < w.cfg.Clients; i++ {
		region := w.cfg.Regions[i%len(w.cfg.Regions)]
		c := &caller{w: w, id: i, region: region, cl: w.clients[region],
			rng: rand.New(rand.NewPCG(uint64(w.cfg.Seed), uint64(i)))}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the callers' first calls over one interval.
			next := time.Now().Add(time.Duration(c.rng.Int64N(int64(interval) + 1)))
			for {
				if !SleepUntil(pace, next) {
					return
				}
				if w.cfg.MaxOps > 0 && budget.Add(-1) < 0 {
					return
				}
				c.step(ctx)
				// Paced, not bursty: a caller that fell behind (a slow call
				// during a fault) resumes the rate rather than catching up.
				next = next.Add(interval)
				if now := time.Now(); next.Before(now) {
					next = now
				}
			}
		}()
	}
	wg.Wait()
	return nil
}

// SleepUntil waits until t or ctx's end, and reports false if ctx ended
// first. A timer, not time.Sleep, so a cancelled run stops at once.
func SleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// created remembers the commit index of the acknowledged create of name
// (a key id or an alias name), or cl's newest token if the answer carried
// none.
func (w *Workload) created(cl *client.Client, name string, index uint64) {
	if index == 0 {
		index = cl.LastCommitIndex()
	}
	w.mu.Lock()
	w.tokens[name] = max(w.tokens[name], index)
	w.mu.Unlock()
}

// carry raises cl's consistency token to the creates of names, so the
// node that serves the next call waits until it has applied them (or
// answers Unavailable and the client tries another node) instead of
// answering NotFound for a key another region's client just created.
// The SDK's token is per client and never lowers: a region's client
// then also waits for whatever committed before those creates.
func (w *Workload) carry(cl *client.Client, names ...string) {
	var index uint64
	w.mu.Lock()
	for _, n := range names {
		index = max(index, w.tokens[n])
	}
	w.mu.Unlock()
	if index > 0 {
		cl.ObserveCommitIndex(index)
	}
}

// newRequestID is an idempotency id for a write.
func newRequestID() string {
	return fmt.Sprintf("chaos-%016x%016x", rand.Uint64(), rand.Uint64())
}

// record runs one call through cl: the consistency tokens of the creates
// it depends on, Invoke, the call with a CallInfo, Complete, and the
// observer.
func (w *Workload) record(ctx context.Context, cl *client.Client, clientID int, kind history.Kind, key string, in history.Input,
	call func(ctx context.Context) (history.Output, error)) (history.Output, error) {
	w.carry(cl, key, in.Alias)
	rec := w.cfg.Recorder
	start := rec.Now()
	h := rec.Invoke(clientID, kind, key, in)
	if w.cfg.ObserveInvoke != nil {
		w.cfg.ObserveInvoke(history.Op{Index: int(h), Client: clientID, Kind: kind, KeyID: key, Input: in, Invoke: start})
	}
	var info client.CallInfo
	out, err := call(client.WithCallInfo(ctx, &info))
	out.Node, out.Token = info.NodeID, info.ConsistencyToken
	if cerr := rec.Complete(h, out, err); cerr != nil {
		return out, errors.Join(err, cerr)
	}
	if w.cfg.Observe != nil {
		// Rebuild what the recorder holds without copying the history.
		op := history.Op{Index: int(h), Client: clientID, Kind: kind, KeyID: key, Input: in, Output: out,
			Outcome: history.Classify(kind, err)}
		if err != nil && op.Output.Error == "" {
			op.Output.Error = history.ErrorName(err)
		}
		op.Invoke, op.Complete = start, rec.Now()
		w.cfg.Observe(op)
	}
	return out, err
}
