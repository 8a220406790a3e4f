// Package scanner scans container images for vulnerabilities with Trivy used as
// a library: every platform of an index, layers shared between platforms
// analysed once, findings merged across platforms, the vulnerability DB pulled
// from an ordered list of mirrors, and the pass/fail gate kept separate from
// what is reported. It is the only package, with internal/demo/vulndb, that imports
// Trivy.
package scanner

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Severity names, most severe first.
var SeverityNames = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"}

// Package types and scanners accepted in Options.
const (
	PkgTypeOS      = "os"
	PkgTypeLibrary = "library"

	ScannerVuln   = "vuln"
	ScannerSecret = "secret"
)

// DefaultDBRepositories are tried in order; the first is Google's mirror,
// which does not share ghcr.io's anonymous rate limit.
var DefaultDBRepositories = []string{
	"mirror.gcr.io/aquasec/trivy-db:2",
	"public.ecr.aws/aquasecurity/trivy-db:2",
	"ghcr.io/aquasecurity/trivy-db:2",
}

// DefaultJavaDBRepositories serve the Java index Trivy fetches lazily, only
// when an image contains JAR files.
var DefaultJavaDBRepositories = []string{
	"mirror.gcr.io/aquasec/trivy-java-db:1",
	"ghcr.io/aquasecurity/trivy-java-db:1",
}

// DefaultTimeout bounds a whole Scan call when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Minute

// Options configure a scan. The zero value scans for vulnerabilities in OS
// and library packages, reports every severity and downloads the DB from
// DefaultDBRepositories into a cache under the user cache directory.
type Options struct {
	// Severities to report (SARIF, JSON, counts, findings). Empty means all.
	// The gate sees every severity regardless: see Gate.
	Severities []string
	// IgnoreUnfixed drops findings without a fixed version, from reports and gate alike.
	IgnoreUnfixed bool
	// PkgTypes: "os", "library". Empty means both.
	PkgTypes []string
	// Scanners: "vuln" and optionally "secret". Empty means vuln only.
	Scanners []string
	// IgnoreFile is a .trivyignore or .trivyignore.yaml file; it must exist when set.
	IgnoreFile string
	// VEX lists OpenVEX, CycloneDX VEX or CSAF documents.
	VEX []string
	// Timeout bounds the whole scan including the DB download. Zero means DefaultTimeout.
	Timeout time.Duration

	// Platforms restricts an index to these platforms ("linux/amd64",
	// "linux/arm64"); a platform without variant matches every variant.
	// Empty scans every platform.
	Platforms []string

	// DBRepositories are tried in order; the next is used when one answers
	// 429, 5xx or cannot be reached. Empty means DefaultDBRepositories.
	DBRepositories []string
	// JavaDBRepositories serve the Java index; empty means DefaultJavaDBRepositories.
	JavaDBRepositories []string
	// CacheDir holds the DB (<CacheDir>/db) and the layer cache. Empty means
	// <user cache dir>/trivy, Trivy's own default.
	CacheDir string
	// SkipDBUpdate uses the DB already in CacheDir and fails when there is none.
	SkipDBUpdate bool
	// LayerCache is "fs" (analysed layers kept in CacheDir across runs, the
	// default) or "memory" (kept for this Scan call only).
	LayerCache string

	// Server is the URL of a Trivy server; when set, the server's DB is used
	// and nothing is downloaded locally.
	Server string
	// ServerToken is sent in ServerTokenHeader (default "Trivy-Token").
	ServerToken       string
	ServerTokenHeader string

	// RemoteOptions carry auth, transport, user agent for every registry
	// request: image pulls and DB downloads.
	RemoteOptions []remote.Option
	// DBRemoteOptions replace RemoteOptions for DB downloads. Give options
	// whose transport retries little: the next DB repository is the better
	// retry when one is rate limited.
	DBRemoteOptions []remote.Option
	// InsecureRegistries are reached over plain HTTP (e.g. "127.0.0.1:5000").
	// They apply to DB repositories; image references carry their own
	// scheme (name.Insecure).
	InsecureRegistries []string

	// hooks lets tests observe Trivy's layer cache.
	hooks hooks
}

type normalized struct {
	Options
	severities []string
	dbRefs     []name.Reference
	javaDBRefs []name.Reference
}

// normalize validates o and fills defaults. Errors are *Error with ErrInvalidOptions.
func (o Options) normalize() (normalized, error) {
	n := normalized{Options: o}

	var err error
	if n.severities, err = ParseSeverities(o.Severities); err != nil {
		return n, err
	}
	if len(n.severities) == 0 {
		n.severities = slices.Clone(SeverityNames)
	}

	if len(n.PkgTypes) == 0 {
		n.PkgTypes = []string{PkgTypeOS, PkgTypeLibrary}
	}
	for _, t := range n.PkgTypes {
		if t != PkgTypeOS && t != PkgTypeLibrary {
			return n, invalid("unknown package type %q: valid package types are os, library", t)
		}
	}
	if len(n.Scanners) == 0 {
		n.Scanners = []string{ScannerVuln}
	}
	for _, s := range n.Scanners {
		if s != ScannerVuln && s != ScannerSecret {
			return n, invalid("unknown scanner %q: valid scanners are vuln, secret", s)
		}
	}

	if n.IgnoreFile != "" {
		if _, err := os.Stat(n.IgnoreFile); err != nil {
			return n, invalid("ignore file %s cannot be read (%v): fix the ignore-file path or remove it", n.IgnoreFile, err)
		}
	}
	for _, v := range n.VEX {
		if _, err := os.Stat(v); err != nil {
			return n, invalid("VEX document %s cannot be read (%v): fix the vex path", v, err)
		}
	}
	for _, p := range n.Platforms {
		if _, err := parsePlatform(p); err != nil {
			return n, invalid("invalid platform %q (%v): write platforms as os/arch[/variant], e.g. linux/arm64", p, err)
		}
	}

	if n.Timeout <= 0 {
		n.Timeout = DefaultTimeout
	}
	if n.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return n, invalid("no cache directory (%v): set cache-dir", err)
		}
		n.CacheDir = filepath.Join(dir, "trivy")
	}
	switch n.LayerCache {
	case "":
		n.LayerCache = "fs"
	case "fs", "memory":
	default:
		return n, invalid("unknown layer cache %q: valid values are fs, memory", n.LayerCache)
	}
	if n.ServerTokenHeader == "" {
		n.ServerTokenHeader = "Trivy-Token"
	}
	if n.Server != "" && !strings.HasPrefix(n.Server, "http://") && !strings.HasPrefix(n.Server, "https://") {
		return n, invalid("trivy server %q must be an http:// or https:// URL", n.Server)
	}

	repos := n.DBRepositories
	if len(repos) == 0 {
		repos = DefaultDBRepositories
	}
	if n.dbRefs, err = n.parseRepos(repos, "db-repository"); err != nil {
		return n, err
	}
	javaRepos := n.JavaDBRepositories
	if len(javaRepos) == 0 {
		javaRepos = DefaultJavaDBRepositories
	}
	if n.javaDBRefs, err = n.parseRepos(javaRepos, "java-db-repository"); err != nil {
		return n, err
	}
	return n, nil
}

func (n normalized) parseRepos(repos []string, input string) ([]name.Reference, error) {
	var refs []name.Reference
	for _, r := range repos {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		var opts []name.Option
		if n.insecure(r) {
			opts = append(opts, name.Insecure)
		}
		ref, err := name.ParseReference(r, opts...)
		if err != nil {
			return nil, invalid("invalid %s %q (%v): use registry/repository:tag, e.g. %s", input, r, err, DefaultDBRepositories[0])
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

func (n normalized) insecure(repo string) bool {
	host, _, _ := strings.Cut(repo, "/")
	return slices.Contains(n.InsecureRegistries, host)
}

// ParseSeverities upper-cases and validates severity names. It accepts
// comma-separated entries too, so inputs can be passed through unchanged.
func ParseSeverities(in []string) ([]string, error) {
	var out []string
	for _, entry := range in {
		for s := range strings.SplitSeq(entry, ",") {
			s = strings.ToUpper(strings.TrimSpace(s))
			if s == "" {
				continue
			}
			if !slices.Contains(SeverityNames, s) {
				return nil, invalid("unknown severity %q: valid severities are %s", s, strings.Join(SeverityNames, ", "))
			}
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

func severityRank(s string) int {
	i := slices.Index(SeverityNames, s)
	if i < 0 {
		return len(SeverityNames)
	}
	return i
}

func invalid(format string, args ...any) error {
	return &Error{Kind: ErrInvalidOptions, Msg: fmt.Sprintf(format, args...)}
}
