package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/meridiankms/meridian/buildinfo"
)

func TestVersion(t *testing.T) {
	want := buildinfo.Read()
	if want.Version == "" {
		t.Fatal("buildinfo.Read().Version is empty")
	}
	for _, flag := range []string{"--version", "-v"} {
		out, errOut, code := cli(t, "", flag)
		if code != 0 || out != "meridian "+want.Version+"\n" || errOut != "" {
			t.Fatalf("%s: exit %d, out %q, err %q", flag, code, out, errOut)
		}
	}

	out, errOut, code := cli(t, "", "version")
	if code != 0 || errOut != "" {
		t.Fatalf("version: exit %d, err %q", code, errOut)
	}
	for _, line := range []string{"Version: " + want.Version + "\n", "GoVersion: " + want.GoVersion + "\n", "Platform: " + want.Platform + "\n"} {
		if !strings.Contains(out, line) {
			t.Errorf("version output lacks %q:\n%s", line, out)
		}
	}

	out, errOut, code = cli(t, "", "version", "-o", "json")
	var got buildinfo.Info
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if code != 0 || dec.Decode(&got) != nil || got != want {
		t.Fatalf("version -o json: exit %d, %q (err %q); want %+v", code, out, errOut, want)
	}
}
