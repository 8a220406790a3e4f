package scanner

import "strings"

// IsCacheEntry reports whether name is a top-level entry Trivy (or this
// package's DB download) writes into a cache directory: the vulnerability
// and Java DBs, the layer cache, checks bundles and VEX repositories. A
// directory holding only these is a Trivy cache, which a scan may reuse.
func IsCacheEntry(name string) bool {
	switch name {
	case "db", "java-db", "fanal", "policy", "vex":
		return true
	}
	// A DB or checks download interrupted before its rename.
	return strings.HasPrefix(name, dbDownloadPrefix) || strings.HasPrefix(name, checksDownloadPrefix)
}
