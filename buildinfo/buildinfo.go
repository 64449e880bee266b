// Package buildinfo says which build of Meridian is running. It is the one
// place the version comes from: the binary's --version and version command,
// the server's start-up log line and the version every node advertises to
// the cluster (Members' build_version, gossip metadata).
//
// It imports nothing of ours, so every package may use it without bending
// the one-way imports of the design (cmd/meridian and node both do).
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// version, when set at link time, wins over everything the Go toolchain
// recorded: go build -ldflags "-X github.com/meridiankms/meridian/buildinfo.version=v1.2.3".
var version string

// Devel is the version of a build that carries no version and no VCS
// revision (go run outside a checkout, some test binaries).
const Devel = "(devel)"

// Info describes the running binary.
type Info struct {
	// Version is the release ("v1.2.3"), the module pseudo-version the
	// toolchain derived from VCS, "devel+REV" (".dirty" when the tree had
	// uncommitted changes), or Devel. Never empty.
	Version string `json:"version"`
	// Revision is the VCS commit the binary was built from ("" if unknown).
	Revision string `json:"revision"`
	// Modified reports uncommitted changes in the build's tree.
	Modified bool `json:"modified"`
	// CommitTime is the revision's commit time in RFC 3339 ("" if unknown).
	CommitTime string `json:"commitTime"`
	// GoVersion is the toolchain that built the binary.
	GoVersion string `json:"goVersion"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// Read returns the running binary's build information. It is computed once.
func Read() Info { return read() }

// Version is Read().Version: what nodes advertise and logs print.
func Version() string { return read().Version }

var read = sync.OnceValue(func() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(bi, version)
})

// fromBuildInfo derives Info from what the toolchain recorded (nil when it
// recorded nothing) and the link-time version.
func fromBuildInfo(bi *debug.BuildInfo, linked string) Info {
	info := Info{GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	main := ""
	if bi != nil {
		info.GoVersion = bi.GoVersion
		main = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			case "vcs.time":
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
					info.CommitTime = t.UTC().Format(time.RFC3339)
				}
			}
		}
	}
	switch {
	case linked != "":
		info.Version = linked
	case main != "" && main != Devel:
		info.Version = main // a release, or a pseudo-version the toolchain stamped
	case info.Revision != "":
		info.Version = "devel+" + short(info.Revision)
		if info.Modified {
			info.Version += ".dirty"
		}
	default:
		info.Version = Devel
	}
	return info
}

// short abbreviates a commit hash the way git log --abbrev=12 does.
func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
