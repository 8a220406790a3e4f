// Package registry is how every stage reaches a container registry: parsing
// references, telling registry kinds apart, finding credentials without
// `docker login`, and one retrying HTTP transport — all on
// go-containerregistry.
package registry

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/registry-actions/registry/internal/report"
)

// Kind is the family a registry belongs to; it decides authentication and
// which APIs exist beside the distribution API.
type Kind string

const (
	KindECR       Kind = "ecr"        // private Amazon ECR
	KindECRPublic Kind = "ecr-public" // public.ecr.aws
	KindGHCR      Kind = "ghcr"       // GitHub Container Registry
	KindDockerHub Kind = "dockerhub"
	KindOther     Kind = "oci" // any other OCI distribution registry
)

// ECRHost is what a private ECR registry host name says about itself.
type ECRHost struct {
	AccountID string // the registry ID
	Region    string
	FIPS      bool
	// DNSSuffix is amazonaws.com, amazonaws.com.cn, or another partition's.
	DNSSuffix string
}

// ecrHostPattern matches private ECR hosts in every partition, e.g.
// 123456789012.dkr.ecr.us-east-1.amazonaws.com,
// 123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com,
// 123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn and the dual-stack
// 123456789012.dkr-ecr.us-east-1.on.aws.
var ecrHostPattern = regexp.MustCompile(`^(\d{12})\.dkr[.-]ecr(-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d+)\.(amazonaws\.com(?:\.cn)?|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov|on\.aws)$`)

// ParseECRHost reports whether host (without port) is a private ECR registry.
func ParseECRHost(host string) (ECRHost, bool) {
	m := ecrHostPattern.FindStringSubmatch(strings.ToLower(host))
	if m == nil {
		return ECRHost{}, false
	}
	return ECRHost{AccountID: m[1], FIPS: m[2] != "", Region: m[3], DNSSuffix: m[4]}, true
}

// KindOf classifies a registry host (with or without port).
func KindOf(registry string) Kind {
	host := strings.ToLower(registry)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	switch {
	case host == "ghcr.io":
		return KindGHCR
	case host == "public.ecr.aws":
		return KindECRPublic
	case host == name.DefaultRegistry || host == "docker.io" || host == "registry-1.docker.io":
		return KindDockerHub
	}
	if _, ok := ParseECRHost(host); ok {
		return KindECR
	}
	return KindOther
}

// IsLoopback reports whether a registry host is on this machine: such
// registries may be reached over plain HTTP.
func IsLoopback(registry string) bool {
	host := registry
	if h, _, err := net.SplitHostPort(registry); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Resolver parses user-supplied references, allowing plain HTTP only for
// loopback and the registries the user listed in insecure-registries.
type Resolver struct {
	Insecure []string
}

func (r Resolver) opts(s string) []name.Option {
	reg := s
	if i := strings.IndexByte(reg, '/'); i >= 0 {
		reg = reg[:i]
	}
	if IsLoopback(reg) || slices.ContainsFunc(r.Insecure, func(h string) bool { return strings.EqualFold(h, reg) }) {
		return []name.Option{name.Insecure}
	}
	return nil
}

// Reference parses an image reference (tag or digest) such as
// ghcr.io/acme/app:v1 or 123456789012.dkr.ecr.us-east-1.amazonaws.com/app@sha256:….
// Docker Hub short names (alpine:3) are accepted. The error quotes the value
// and says what is wrong with it.
func (r Resolver) Reference(s string) (name.Reference, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("empty image reference")
	}
	if strings.Contains(s, "://") {
		return nil, fmt.Errorf("invalid image reference %q: %s", s, explainRefError(s, nil))
	}
	ref, err := name.ParseReference(s, r.opts(s)...)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %s", s, explainRefError(s, err))
	}
	if err := validRepositoryPath(ref.Context()); err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %s", s, err)
	}
	if tag, ok := ref.(name.Tag); ok {
		if err := ValidTag(tag.TagStr()); err != nil {
			return nil, fmt.Errorf("invalid image reference %q: %w", s, err)
		}
	}
	return ref, nil
}

// Repository parses a repository such as ghcr.io/acme/app (no tag or digest).
func (r Resolver) Repository(s string) (name.Repository, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return name.Repository{}, fmt.Errorf("empty repository name")
	}
	if strings.Contains(s, "://") {
		return name.Repository{}, fmt.Errorf("invalid repository %q: %s", s, explainRefError(s, nil))
	}
	if strings.Contains(s, "@") || hasTag(s) {
		return name.Repository{}, fmt.Errorf("invalid repository %q: give a repository without tag or digest (put tags in the tags input)", s)
	}
	repo, err := name.NewRepository(s, r.opts(s)...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("invalid repository %q: %s", s, explainRefError(s, err))
	}
	if err := validRepositoryPath(repo); err != nil {
		return name.Repository{}, fmt.Errorf("invalid repository %q: %s", s, err)
	}
	return repo, nil
}

// Digest parses a reference that must carry a digest.
func (r Resolver) Digest(s string) (name.Digest, error) {
	ref, err := r.Reference(s)
	if err != nil {
		return name.Digest{}, err
	}
	d, ok := ref.(name.Digest)
	if !ok {
		return name.Digest{}, fmt.Errorf("%q is not pinned to a digest: use repository@sha256:…", s)
	}
	return d, nil
}

// hasTag reports whether the last path segment carries :tag (a port in the
// registry host is not a tag).
func hasTag(s string) bool {
	last := s
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		last = s[i+1:]
	}
	return strings.Contains(last, ":")
}

// LowercaseGHCR lower-cases the path of a ghcr.io reference: GitHub owner
// and repository names may have capitals, but registry paths may not, and
// ghcr.io stores them lower-cased. It reports whether anything changed so the
// caller can tell the user.
func LowercaseGHCR(s string) (string, bool) {
	reg, rest, ok := strings.Cut(s, "/")
	if !ok || KindOf(reg) != KindGHCR {
		return s, false
	}
	// Keep the tag's case: tags may legitimately hold capitals.
	path, suffix := rest, ""
	if i := strings.IndexAny(rest, "@"); i >= 0 {
		path, suffix = rest[:i], rest[i:]
	} else if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		path, suffix = rest[:i], rest[i:]
	}
	lower := strings.ToLower(path)
	return reg + "/" + lower + suffix, lower != path
}

var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// ValidTag checks a tag against the OCI distribution grammar.
func ValidTag(tag string) error {
	if !tagPattern.MatchString(tag) {
		return fmt.Errorf("invalid tag %q: tags are 1–128 characters of letters, digits, _ . and -, not starting with . or -", tag)
	}
	return nil
}

// pathComponent is the distribution spec's grammar for one component of a
// repository path; go-containerregistry accepts more (empty components
// such as host//repo), which registries then refuse.
var pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)

func validRepositoryPath(repo name.Repository) error {
	for _, c := range strings.Split(repo.RepositoryStr(), "/") {
		if c == "" {
			return fmt.Errorf("the repository path has an empty component (a doubled or trailing /)")
		}
		if !pathComponent.MatchString(c) {
			return fmt.Errorf("path component %q is not valid: use lower-case letters and digits separated by . _ __ or -", c)
		}
	}
	return nil
}

// repositoryPart is s without its registry host, tag and digest.
func repositoryPart(s string) string {
	if first, rest, ok := strings.Cut(s, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		s = rest
	}
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, ':'); i > strings.LastIndexByte(s, '/') {
		s = s[:i]
	}
	return s
}

func explainRefError(s string, err error) string {
	switch {
	case strings.ContainsFunc(s, unicode.IsControl):
		return "it contains control characters"
	case strings.ContainsAny(s, " \t"):
		return "it contains whitespace"
	case strings.Contains(s, "://"):
		return "drop the scheme (https://): references look like registry/repository:tag"
	case repositoryPart(s) != strings.ToLower(repositoryPart(s)):
		return "repository names must be lower-case"
	}
	if err == nil {
		return "it is not a valid reference"
	}
	msg := err.Error()
	// go-containerregistry prefixes its messages with the value; keep only the reason.
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return report.OneLine(msg)
}
