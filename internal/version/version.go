// Package version reports what build this is. The values are stamped at
// link time: -ldflags "-X github.com/registry-actions/registry/internal/version.Version=v1.2.3".
package version

import "runtime/debug"

// Stamped at link time; see the Makefile.
var (
	Version = "dev"
	Commit  = ""
)

// String is the version with the commit when known.
func String() string {
	v, c := Version, Commit
	if c == "" {
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" {
					c = s.Value
				}
			}
		}
	}
	if len(c) > 12 {
		c = c[:12]
	}
	if c != "" {
		return v + " (" + c + ")"
	}
	return v
}

// UserAgent names this tool on every registry and API request.
func UserAgent() string { return "registry-action/" + Version }
