package hsmtest

import "github.com/meridiankms/meridian/hsm"

// Capability is one of hsm.HSM's capability accessors, so tests can walk
// them all (a new capability is added here, and every test over
// Capabilities covers it).
type Capability struct {
	name string
	has  func(h hsm.HSM) (present, ok bool)
}

// String is the accessor's name.
func (c Capability) String() string { return c.name }

// Has calls the accessor on h: whether it gave a non-nil capability, and
// the ok it returned.
func (c Capability) Has(h hsm.HSM) (present, ok bool) { return c.has(h) }

// The capabilities of hsm.HSM.
var (
	CapKeyOps           = capability("KeyOps", hsm.HSM.KeyOps)
	CapEnroller         = capability("Enroller", hsm.HSM.Enroller)
	CapDomainKeyRotator = capability("DomainKeyRotator", hsm.HSM.DomainKeyRotator)
	CapToken            = capability("Token", hsm.HSM.Token)

	// Capabilities lists every capability of hsm.HSM.
	Capabilities = []Capability{CapKeyOps, CapEnroller, CapDomainKeyRotator, CapToken}
)

// capability names the accessor get (a method expression of hsm.HSM).
func capability[C comparable](name string, get func(hsm.HSM) (C, bool)) Capability {
	return Capability{name, func(h hsm.HSM) (bool, bool) {
		v, ok := get(h)
		var none C
		return v != none, ok
	}}
}
