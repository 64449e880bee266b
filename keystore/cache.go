package keystore

import (
	"context"
	"fmt"
	"sync"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// cache holds unwrapped key versions, by key id then version, so that a
// steady-state operation costs two map lookups and no HSM call. The fsm's
// change notifications evict a key's versions (wiping them once no
// operation still uses them); Close evicts everything.
type cache struct {
	mu       sync.RWMutex
	keys     map[string]map[slot]*material
	n        int
	max      int
	inflight map[cacheKey]*flight
	closed   bool
}

type cacheKey struct {
	id string
	slot
}

// slot is one cached object of a key: a version's secret material (or its
// HSM handle), or its parsed public key (public), which Verify and RSA
// encryption use without the HSM.
type slot struct {
	version uint32
	public  bool
}

// flight is one unwrap in progress; concurrent first uses wait for it
// instead of unwrapping the same blob again. stale is set when the key is
// evicted meanwhile, so the result is used once but not cached.
type flight struct {
	done  chan struct{}
	stale bool
}

func newCache(max int) *cache {
	return &cache{
		keys:     make(map[string]map[slot]*material),
		max:      max,
		inflight: make(map[cacheKey]*flight),
	}
}

// errCacheClosed: the Store was closed.
var errCacheClosed = fmt.Errorf("%w: keystore closed", ErrUnavailable)

// get returns the material for ck, acquired: the caller must release it.
// load unwraps it on a miss. keep, called under the cache lock, says
// whether the loaded material may be cached: the key may have been disabled
// between the caller's state check and the load, and its eviction may have
// run before the load began, so the state is read again here (the fsm
// publishes a state before it notifies, and eviction needs this lock).
func (c *cache) get(ctx context.Context, ck cacheKey, load func(context.Context) (*material, error), keep func() bool) (*material, error) {
	for {
		c.mu.RLock()
		m := c.keys[ck.id][ck.slot]
		if m != nil {
			m.acquire()
		}
		c.mu.RUnlock()
		if m != nil {
			return m, nil
		}

		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, errCacheClosed
		}
		if m := c.keys[ck.id][ck.slot]; m != nil {
			m.acquire()
			c.mu.Unlock()
			return m, nil
		}
		if f := c.inflight[ck]; f != nil {
			c.mu.Unlock()
			select {
			case <-f.done:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		f := &flight{done: make(chan struct{})}
		c.inflight[ck] = f
		c.mu.Unlock()

		m, err := load(ctx)

		c.mu.Lock()
		delete(c.inflight, ck)
		close(f.done)
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		if !f.stale && !c.closed && keep() {
			c.insert(ck, m) // the cache keeps the reference load made
			m.acquire()     // and the caller gets its own
		}
		c.mu.Unlock()
		return m, nil
	}
}

// insert adds m under ck, evicting an arbitrary other key when full.
// c.mu must be held.
func (c *cache) insert(ck cacheKey, m *material) {
	if c.max > 0 && c.n >= c.max {
		for id := range c.keys {
			c.evictLocked(id)
			break
		}
	}
	vs := c.keys[ck.id]
	if vs == nil {
		vs = make(map[slot]*material, 1)
		c.keys[ck.id] = vs
	}
	vs[ck.slot] = m
	c.n++
}

// drop evicts ck if it still holds m: an HSM lost m's handle, and the next
// use must import the version again. A newer entry that a concurrent user
// already re-imported is left alone.
func (c *cache) drop(ck cacheKey, m *material) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys[ck.id][ck.slot] != m {
		return
	}
	delete(c.keys[ck.id], ck.slot)
	if len(c.keys[ck.id]) == 0 {
		delete(c.keys, ck.id)
	}
	c.n--
	m.release()
}

// evict drops every cached version of keyID ("" = every key). It is the
// fsm's change callback, so it only takes the cache lock.
func (c *cache) evict(keyID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ck, f := range c.inflight {
		if keyID == "" || ck.id == keyID {
			f.stale = true
		}
	}
	if keyID == "" {
		for id := range c.keys {
			c.evictLocked(id)
		}
		return
	}
	c.evictLocked(keyID)
}

func (c *cache) evictLocked(id string) {
	for _, m := range c.keys[id] {
		m.release()
		c.n--
	}
	delete(c.keys, id)
}

// close evicts everything and refuses later loads.
func (c *cache) close() {
	c.evict("")
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

// len reports the number of cached versions (tests observe eviction).
func (c *cache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.n
}

// material returns version v of key k ready to use, acquired; the caller
// releases it. A miss unwraps the version's blob with the HSM (SOFTWARE) or
// imports it into the HSM (protection level HSM). Operations that may meet
// a lost HSM handle use withMaterial instead.
func (s *Store) material(ctx context.Context, k *fsmpb.Key, v *fsmpb.KeyVersion) (*material, error) {
	ck := cacheKey{k.GetId(), slot{version: v.GetVersion()}}
	load := s.unwrapMaterial
	if hsmLevel(k) {
		load = s.importMaterial
	}
	return s.cache.get(ctx, ck, func(ctx context.Context) (*material, error) { return load(ctx, k, v) }, s.stillEnabled(ck.id))
}

// publicMaterial returns version v's parsed public key (asymmetric keys),
// acquired. It needs neither the domain key nor the HSM.
func (s *Store) publicMaterial(ctx context.Context, k *fsmpb.Key, v *fsmpb.KeyVersion) (*material, error) {
	ck := cacheKey{k.GetId(), slot{version: v.GetVersion(), public: true}}
	return s.cache.get(ctx, ck, func(context.Context) (*material, error) {
		m, err := newPublicMaterial(keySpec(k), v.GetPublicKey())
		if err != nil {
			return nil, fmt.Errorf("load public key of %s v%d: %w: %w", k.GetId(), v.GetVersion(), ErrInternal, err)
		}
		return m, nil
	}, s.stillEnabled(ck.id))
}

// stillEnabled is the cache's keep check for key id (see cache.get).
func (s *Store) stillEnabled(id string) func() bool {
	return func() bool {
		cur, ok := s.state.Key(id)
		return ok && cur.GetState() == fsmpb.KeyState_KEY_STATE_ENABLED
	}
}

// unwrapMaterial unwraps a SOFTWARE-level version into process memory.
func (s *Store) unwrapMaterial(ctx context.Context, k *fsmpb.Key, v *fsmpb.KeyVersion) (*material, error) {
	raw, err := s.hsm.Unwrap(ctx, v.GetDomainKeyVersion(), v.GetWrappedMaterial())
	if err != nil {
		return nil, hsmErr(fmt.Sprintf("unwrap key %s v%d", k.GetId(), v.GetVersion()), err)
	}
	m, err := newMaterial(keySpec(k), raw)
	if err != nil {
		return nil, fmt.Errorf("load key %s v%d: %w: %w", k.GetId(), v.GetVersion(), ErrInternal, err)
	}
	return m, nil
}
