package workload

import (
	"context"
	cryptorand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"strings"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/chaos/history"
	"github.com/meridiankms/meridian/client"
)

// caller is one concurrent client: one call at a time, its own RNG.
type caller struct {
	w      *Workload
	id     int
	region string
	cl     *client.Client
	rng    *rand.Rand
}

// step makes one call, control-plane with probability ControlFraction.
func (c *caller) step(ctx context.Context) {
	if c.rng.Float64() < c.w.cfg.ControlFraction {
		c.control(ctx)
		return
	}
	c.data(ctx)
}

// data makes one data-plane call on a hot key.
func (c *caller) data(ctx context.Context) {
	key := c.w.hot[c.rng.IntN(len(c.w.hot))]
	switch p := c.rng.IntN(100); {
	case p < 35:
		c.encrypt(ctx, key)
	case p < 65:
		if ct, ok := c.w.randomCiphertext(c.rng); ok {
			c.decrypt(ctx, ct)
			return
		}
		c.encrypt(ctx, key)
	case p < 85:
		c.generateDataKey(ctx, key)
	case p < 95:
		c.sign(ctx)
	default:
		if s, ok := c.w.randomSignature(c.rng); ok {
			c.verify(ctx, s)
			return
		}
		c.sign(ctx)
	}
}

// control makes one control-plane call on the shared pool of churned keys.
func (c *caller) control(ctx context.Context) {
	key, ok := c.w.randomPoolKey(c.rng)
	if !ok || (c.rng.IntN(10) == 0 && c.w.poolSize() < c.w.cfg.MaxControlKeys) {
		c.create(ctx)
		return
	}
	switch p := c.rng.IntN(100); {
	case p < 25:
		c.describe(ctx, key)
	case p < 38:
		c.setEnabled(ctx, c.id, key, false)
	case p < 51:
		c.setEnabled(ctx, c.id, key, true)
	case p < 59:
		c.rotate(ctx, key)
	case p < 69:
		c.alias(ctx, key)
	case p < 77:
		c.scheduleDeletion(ctx, key)
	case p < 87:
		c.cancelDeletion(ctx, key)
	default:
		// A data-plane call on a churned key: the staleness check needs
		// calls that race disables.
		c.encrypt(ctx, key)
	}
}

func (w *Workload) randomCiphertext(r *rand.Rand) (ciphertext, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.cts) == 0 {
		return ciphertext{}, false
	}
	return w.cts[r.IntN(len(w.cts))], true
}

func (w *Workload) randomSignature(r *rand.Rand) (signature, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.sigs) == 0 {
		return signature{}, false
	}
	return w.sigs[r.IntN(len(w.sigs))], true
}

func (w *Workload) randomPoolKey(r *rand.Rand) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pool) == 0 {
		return "", false
	}
	return w.pool[r.IntN(len(w.pool))], true
}

func (w *Workload) poolSize() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pool)
}

// keep remembers at most this many ciphertexts and signatures, replacing
// random old ones, so memory stays flat over a long game day.
const keep = 256

func keepOne[T any](xs []T, x T, r *rand.Rand) []T {
	if len(xs) < keep {
		return append(xs, x)
	}
	xs[r.IntN(len(xs))] = x
	return xs
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = cryptorand.Read(b) // never fails (crypto/rand's contract since Go 1.24)
	return b
}

func stateName(s apiv1.KeyState) string {
	return strings.TrimPrefix(s.String(), "KEY_STATE_")
}

func (c *caller) create(ctx context.Context) {
	req := &apiv1.CreateKeyRequest{Description: "chaos " + c.w.runID + " churn", RequestId: newRequestID()}
	res, err := c.w.createKey(ctx, c.id, c.cl, req)
	if err != nil {
		return
	}
	c.w.mu.Lock()
	if len(c.w.pool) < c.w.cfg.MaxControlKeys {
		c.w.pool = append(c.w.pool, res.GetKeyMetadata().GetKeyId())
	}
	c.w.mu.Unlock()
}

func (w *Workload) createKey(ctx context.Context, clientID int, cl *client.Client, req *apiv1.CreateKeyRequest) (*apiv1.CreateKeyResponse, error) {
	if clientID < 0 {
		clientID = w.cfg.Clients // the setup client
	}
	var res *apiv1.CreateKeyResponse
	_, err := w.record(ctx, cl, clientID, history.CreateKey, "", history.Input{RequestID: req.GetRequestId()},
		func(ctx context.Context) (history.Output, error) {
			var err error
			res, err = cl.CreateKey(ctx, req)
			if err != nil {
				return history.Output{}, err
			}
			md := res.GetKeyMetadata()
			return history.Output{KeyID: md.GetKeyId(), State: stateName(md.GetKeyState()),
				KeyVersion: int(md.GetCurrentKeyVersion()), CommitIndex: res.GetCommitIndex()}, nil
		})
	if err == nil {
		w.created(cl, res.GetKeyMetadata().GetKeyId(), res.GetCommitIndex())
	}
	return res, err
}

func (c *caller) describe(ctx context.Context, key string) {
	_, _ = c.w.record(ctx, c.cl, c.id, history.DescribeKey, key, history.Input{}, func(ctx context.Context) (history.Output, error) {
		res, err := c.cl.DescribeKey(ctx, &apiv1.DescribeKeyRequest{KeyId: key})
		if err != nil {
			return history.Output{}, err
		}
		md := res.GetKeyMetadata()
		return history.Output{KeyID: md.GetKeyId(), State: stateName(md.GetKeyState()),
			KeyVersion: int(md.GetCurrentKeyVersion())}, nil
	})
}

// setEnabled enables or disables key, recorded as clientID's call.
func (c *caller) setEnabled(ctx context.Context, clientID int, key string, enable bool) error {
	return c.w.setEnabled(ctx, clientID, c.cl, key, enable)
}

func (w *Workload) setEnabled(ctx context.Context, clientID int, cl *client.Client, key string, enable bool) error {
	rid := newRequestID()
	kind := history.DisableKey
	if enable {
		kind = history.EnableKey
	}
	_, err := w.record(ctx, cl, clientID, kind, key, history.Input{RequestID: rid}, func(ctx context.Context) (history.Output, error) {
		var (
			res *apiv1.WriteResponse
			err error
		)
		if enable {
			res, err = cl.EnableKey(ctx, &apiv1.EnableKeyRequest{KeyId: key, RequestId: rid})
		} else {
			res, err = cl.DisableKey(ctx, &apiv1.DisableKeyRequest{KeyId: key, RequestId: rid})
		}
		if err != nil {
			return history.Output{}, err
		}
		return history.Output{KeyID: key, CommitIndex: res.GetCommitIndex()}, nil
	})
	return err
}

func (c *caller) rotate(ctx context.Context, key string) {
	rid := newRequestID()
	_, _ = c.w.record(ctx, c.cl, c.id, history.RotateKeyOnDemand, key, history.Input{RequestID: rid}, func(ctx context.Context) (history.Output, error) {
		res, err := c.cl.RotateKeyOnDemand(ctx, &apiv1.RotateKeyOnDemandRequest{KeyId: key, RequestId: rid})
		if err != nil {
			return history.Output{}, err
		}
		return history.Output{KeyID: res.GetKeyId(), KeyVersion: int(res.GetKeyVersion()), CommitIndex: res.GetCommitIndex()}, nil
	})
}

// alias points one of a few aliases at key: created the first time,
// updated afterwards.
func (c *caller) alias(ctx context.Context, key string) {
	name := fmt.Sprintf("alias/chaos-%s-%d", c.w.runID, c.rng.IntN(3))
	c.w.mu.Lock()
	_, exists := c.w.aliases[name]
	c.w.mu.Unlock()
	rid := newRequestID()
	kind := history.CreateAlias
	if exists {
		kind = history.UpdateAlias
	}
	out, err := c.w.record(ctx, c.cl, c.id, kind, key, history.Input{RequestID: rid, Alias: name}, func(ctx context.Context) (history.Output, error) {
		var (
			res *apiv1.WriteResponse
			err error
		)
		if exists {
			res, err = c.cl.UpdateAlias(ctx, &apiv1.UpdateAliasRequest{AliasName: name, TargetKeyId: key, RequestId: rid})
		} else {
			res, err = c.cl.CreateAlias(ctx, &apiv1.CreateAliasRequest{AliasName: name, TargetKeyId: key, RequestId: rid})
		}
		if err != nil {
			return history.Output{}, err
		}
		return history.Output{KeyID: key, CommitIndex: res.GetCommitIndex()}, nil
	})
	if err == nil && !exists {
		c.w.created(c.cl, name, out.CommitIndex)
	}
	if err == nil || client.ExceptionOf(err) == string(client.AlreadyExists) {
		c.w.mu.Lock()
		c.w.aliases[name] = key
		c.w.mu.Unlock()
	}
}

func (c *caller) scheduleDeletion(ctx context.Context, key string) {
	rid := newRequestID()
	const days = 7 // the shortest window: nothing is deleted during a run
	_, _ = c.w.record(ctx, c.cl, c.id, history.ScheduleKeyDeletion, key, history.Input{RequestID: rid, PendingWindowDays: days},
		func(ctx context.Context) (history.Output, error) {
			res, err := c.cl.ScheduleKeyDeletion(ctx, &apiv1.ScheduleKeyDeletionRequest{KeyId: key, PendingWindowInDays: days, RequestId: rid})
			if err != nil {
				return history.Output{}, err
			}
			return history.Output{KeyID: res.GetKeyId(), State: stateName(res.GetKeyState()), CommitIndex: res.GetCommitIndex()}, nil
		})
}

func (c *caller) cancelDeletion(ctx context.Context, key string) {
	rid := newRequestID()
	_, _ = c.w.record(ctx, c.cl, c.id, history.CancelKeyDeletion, key, history.Input{RequestID: rid}, func(ctx context.Context) (history.Output, error) {
		res, err := c.cl.CancelKeyDeletion(ctx, &apiv1.CancelKeyDeletionRequest{KeyId: key, RequestId: rid})
		if err != nil {
			return history.Output{}, err
		}
		return history.Output{KeyID: res.GetKeyId(), CommitIndex: res.GetCommitIndex()}, nil
	})
}

func (c *caller) encrypt(ctx context.Context, key string) {
	pt := randomBytes(32)
	var ectx map[string]string
	if c.rng.IntN(2) == 0 {
		ectx = map[string]string{"run": c.w.runID, "client": fmt.Sprint(c.id)}
	}
	out, err := c.w.encrypt(ctx, c.id, c.cl, key, pt, ectx)
	if err == nil {
		c.w.mu.Lock()
		c.w.cts = keepOne(c.w.cts, ciphertext{key: key, blob: out.Ciphertext, ctx: ectx}, c.rng)
		c.w.mu.Unlock()
	}
}

func (w *Workload) encrypt(ctx context.Context, clientID int, cl *client.Client, key string, pt []byte, ectx map[string]string) (history.Output, error) {
	return w.record(ctx, cl, clientID, history.Encrypt, key, history.Input{PlaintextHash: history.HashPlaintext(pt), Context: ectx},
		func(ctx context.Context) (history.Output, error) {
			res, err := cl.Encrypt(ctx, &apiv1.EncryptRequest{KeyId: key, Plaintext: pt, EncryptionContext: ectx})
			if err != nil {
				return history.Output{}, err
			}
			return history.Output{KeyID: res.GetKeyId(), KeyVersion: int(res.GetKeyVersion()), Ciphertext: res.GetCiphertextBlob()}, nil
		})
}

func (c *caller) decrypt(ctx context.Context, ct ciphertext) {
	_, _ = c.w.record(ctx, c.cl, c.id, history.Decrypt, ct.key, history.Input{Ciphertext: ct.blob, Context: ct.ctx},
		func(ctx context.Context) (history.Output, error) {
			res, err := c.cl.Decrypt(ctx, &apiv1.DecryptRequest{CiphertextBlob: ct.blob, EncryptionContext: ct.ctx})
			if err != nil {
				return history.Output{}, err
			}
			return history.Output{KeyID: res.GetKeyId(), KeyVersion: int(res.GetKeyVersion()),
				PlaintextHash: history.HashPlaintext(res.GetPlaintext())}, nil
		})
}

func (c *caller) generateDataKey(ctx context.Context, key string) {
	_, _ = c.w.record(ctx, c.cl, c.id, history.GenerateDataKey, key, history.Input{}, func(ctx context.Context) (history.Output, error) {
		res, err := c.cl.GenerateDataKey(ctx, &apiv1.GenerateDataKeyRequest{KeyId: key, KeySpec: apiv1.DataKeySpec_DATA_KEY_SPEC_AES_256})
		if err != nil {
			return history.Output{}, err
		}
		return history.Output{KeyID: res.GetKeyId(), KeyVersion: int(res.GetKeyVersion()), Ciphertext: res.GetCiphertextBlob(),
			PlaintextHash: history.HashPlaintext(res.GetPlaintext())}, nil
	})
}

func (c *caller) sign(ctx context.Context) {
	msg := randomBytes(48)
	const alg = apiv1.SigningAlgorithm_SIGNING_ALGORITHM_ECDSA_SHA_256
	key := c.w.signKey
	var sig []byte
	_, err := c.w.record(ctx, c.cl, c.id, history.Sign, key, history.Input{PlaintextHash: history.HashPlaintext(msg)},
		func(ctx context.Context) (history.Output, error) {
			res, err := c.cl.Sign(ctx, &apiv1.SignRequest{KeyId: key, Message: msg, SigningAlgorithm: alg})
			if err != nil {
				return history.Output{}, err
			}
			sig = res.GetSignature()
			return history.Output{KeyID: res.GetKeyId(), KeyVersion: int(res.GetKeyVersion())}, nil
		})
	if err == nil {
		c.w.mu.Lock()
		c.w.sigs = keepOne(c.w.sigs, signature{key: key, msg: msg, sig: sig, algorithm: alg}, c.rng)
		c.w.mu.Unlock()
	}
}

// ErrBadSignature is recorded when Verify answers "invalid" for a
// signature the cluster itself made: a wrong answer, not an outage.
var ErrBadSignature = fmt.Errorf("workload: a signature the cluster made does not verify")

func (c *caller) verify(ctx context.Context, s signature) {
	_, _ = c.w.record(ctx, c.cl, c.id, history.Verify, s.key, history.Input{PlaintextHash: history.HashPlaintext(s.msg)},
		func(ctx context.Context) (history.Output, error) {
			res, err := c.cl.Verify(ctx, &apiv1.VerifyRequest{KeyId: s.key, Message: s.msg, Signature: s.sig, SigningAlgorithm: s.algorithm})
			if err != nil {
				return history.Output{}, err
			}
			out := history.Output{KeyID: res.GetKeyId()}
			if !res.GetSignatureValid() {
				out.Error = "InvalidSignature"
				return out, ErrBadSignature
			}
			return out, nil
		})
}

// SetKeyEnabled enables or disables key as the game-day operator (its own
// client id in the history), through the workload's client of region.
func (w *Workload) SetKeyEnabled(ctx context.Context, region, key string, enable bool) error {
	cl := w.clients[region]
	if cl == nil {
		return fmt.Errorf("%w: no client in region %s", ErrConfig, region)
	}
	return w.setEnabled(ctx, w.OperatorClientID(), cl, key, enable)
}

// ProbeKey encrypts a random plaintext under key as the game-day operator
// (recorded like SetKeyEnabled): the check a runbook makes that the key
// serves again.
func (w *Workload) ProbeKey(ctx context.Context, region, key string) error {
	cl := w.clients[region]
	if cl == nil {
		return fmt.Errorf("%w: no client in region %s", ErrConfig, region)
	}
	_, err := w.encrypt(ctx, w.OperatorClientID(), cl, key, randomBytes(32), nil)
	return err
}

// ProbeWrite creates a key as the runner's operator (recorded like
// SetKeyEnabled), through the workload's client of region: the write an
// operator makes to see that the control plane is back. The client routes
// it to the leader wherever that is.
func (w *Workload) ProbeWrite(ctx context.Context, region string) error {
	cl := w.clients[region]
	if cl == nil {
		return fmt.Errorf("%w: no client in region %s", ErrConfig, region)
	}
	_, err := w.createKey(ctx, w.OperatorClientID(), cl, &apiv1.CreateKeyRequest{
		Description: "chaos " + w.runID + " write probe", RequestId: newRequestID()})
	return err
}

// OperatorClientID is the history client id of calls the runner makes
// itself (the game day's disable, enable and probes, and write probes);
// the setup's creates use
// OperatorClientID()-1.
func (w *Workload) OperatorClientID() int { return w.cfg.Clients + 1 }
