package main

import (
	"github.com/spf13/cobra"

	"github.com/meridiankms/meridian/buildinfo"
)

func newVersionCmd() *cobra.Command {
	o := &clientOptions{output: outputText}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Long: `Print this binary's version and how it was built: the release or module
version (or devel+REVISION, ".dirty" with uncommitted changes, when built
from a checkout), the VCS revision and its commit time, the Go toolchain and
the platform. A node advertises the same version to the cluster: see the
VERSION column of "meridian operator members".`,
		Example: `  meridian version
  meridian version -o json
  meridian --version`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bi := buildinfo.Read()
			r := &result{value: bi}
			r.add("Version", bi.Version)
			r.add("Revision", bi.Revision)
			if bi.Revision != "" {
				r.addBool("Modified", bi.Modified)
			}
			r.add("CommitTime", bi.CommitTime)
			r.add("GoVersion", bi.GoVersion)
			r.add("Platform", bi.Platform)
			return emit(cmd, o, rawOut{}, r)
		},
	}
	addOutputFlag(cmd.Flags(), &o.output)
	return cmd
}
