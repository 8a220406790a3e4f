package app

import (
	"slices"

	"github.com/sethvargo/go-githubactions"

	"github.com/registry-actions/registry/internal/inputs"
)

// needsEngine reports whether this invocation scans (or runs the demo,
// which scans), so that a lean build hands it to the full one before doing
// anything. Unparsable input is not our concern here: the full build reports
// it, or this build does when nothing scans.
func needsEngine(pio IO, action bool) bool {
	if action {
		gha := githubactions.New(githubactions.WithGetenv(pio.Getenv))
		chain, err := inputs.ParseChain(gha.GetInput("stage"))
		if gha.GetInput("stage") == "" {
			chain, err = inputs.ParseChain("push")
		}
		return err == nil && slices.Contains(chain, inputs.Scan)
	}
	if len(pio.Args) == 0 {
		return false
	}
	switch pio.Args[0] {
	case "scan", "demo":
		return true
	case "run":
		for _, a := range pio.Args[1:] {
			if chain, err := inputs.ParseChain(a); err == nil {
				return slices.Contains(chain, inputs.Scan)
			}
		}
	}
	return false
}
