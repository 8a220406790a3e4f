package scanner

import xos "github.com/aquasecurity/trivy/pkg/x/os"

// RemoveTempDir removes the directory Trivy creates under the system temp
// directory (trivy-<random>) the first time this process scans, with
// whatever Trivy left in it. Trivy makes it once per process and never
// removes it itself (its CLI does, on exit), so the program calls this once,
// when it exits: the directory is this process's own, and no scan can run
// after it is gone.
func RemoveTempDir() error { return xos.Cleanup() }
