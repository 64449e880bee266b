package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := func(rev, modified, at string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev},
			{Key: "vcs.modified", Value: modified}, {Key: "vcs.time", Value: at}}
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name, main, linked string
		settings           []debug.BuildSetting
		want               Info
	}{
		{"release", "v1.4.0", "", nil, Info{Version: "v1.4.0"}},
		{"pseudo-version stamped by the toolchain", "v0.0.0-20250102030405-0123456789ab+dirty", "",
			vcs(rev, "true", "2025-01-02T03:04:05Z"),
			Info{Version: "v0.0.0-20250102030405-0123456789ab+dirty", Revision: rev, Modified: true, CommitTime: "2025-01-02T03:04:05Z"}},
		{"devel with a clean checkout", Devel, "", vcs(rev, "false", "2025-01-02T03:04:05+01:00"),
			Info{Version: "devel+0123456789ab", Revision: rev, CommitTime: "2025-01-02T02:04:05Z"}},
		{"devel with local changes", Devel, "", vcs(rev, "true", ""),
			Info{Version: "devel+0123456789ab.dirty", Revision: rev, Modified: true}},
		{"devel without VCS", Devel, "", nil, Info{Version: Devel}},
		{"no main version at all", "", "", nil, Info{Version: Devel}},
		{"link-time version wins", Devel, "v2.0.0-rc1", vcs(rev, "true", ""),
			Info{Version: "v2.0.0-rc1", Revision: rev, Modified: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bi := &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Path: "github.com/meridiankms/meridian", Version: tt.main}, Settings: tt.settings}
			got := fromBuildInfo(bi, tt.linked)
			tt.want.GoVersion, tt.want.Platform = "go1.99", got.Platform
			if got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// A binary built without module information still reports a version.
func TestNoBuildInfo(t *testing.T) {
	got := fromBuildInfo(nil, "")
	if got.Version != Devel || got.GoVersion == "" || got.Platform == "" {
		t.Fatalf("got %+v", got)
	}
	if Version() == "" {
		t.Fatal("Version() is empty")
	}
}
