package scanner

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	"github.com/aquasecurity/trivy/pkg/oci"
	"github.com/aquasecurity/trivy/pkg/policy"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// DefaultChecksBundleRepository is where `trivy config` looks for newer
// checks; configuration scanning only goes there when it is named.
const DefaultChecksBundleRepository = "mirror.gcr.io/aquasec/trivy-checks:2"

// ChecksEmbedded names the checks built into this binary.
const ChecksEmbedded = "embedded"

const checksModule = "github.com/aquasecurity/trivy-checks"

// ensureChecks picks the checks a configuration scan runs: the embedded ones
// unless bundle repositories are named; then the first repository that
// answers (the next one on 429, 5xx or no answer, as for the DB), reusing
// the cached bundle when its digest is current. When no repository answers,
// a cached bundle, else the embedded checks, run with a warning: checks are
// always available offline, unlike a vulnerability DB.
func ensureChecks(ctx context.Context, opts ConfigOptions, refs []name.Reference) (ChecksInfo, string, []string) {
	embedded := ChecksInfo{Source: ChecksEmbedded, Version: moduleVersion(checksModule)}
	if len(refs) == 0 {
		return embedded, "", nil
	}
	var failures []string
	for _, ref := range refs {
		info, dir, err := checksFrom(ctx, opts, ref)
		if err == nil {
			var warnings []string
			if len(failures) > 0 {
				warnings = append(warnings, fmt.Sprintf("checks bundle: fell back to %s after %s", ref, strings.Join(failures, "; ")))
			}
			return info, dir, warnings
		}
		failures = append(failures, fmt.Sprintf("%s: %s", ref, describeFailure(err)))
		if ctx.Err() != nil || !fallbackWorthy(err) {
			break
		}
	}
	if meta, err := readBundleMeta(opts.CacheDir); err == nil {
		return ChecksInfo{Source: meta.Repository, Version: meta.Digest},
			bundleContent(opts.CacheDir),
			[]string{fmt.Sprintf("checks bundle could not be downloaded (%s): using the bundle cached in %s", strings.Join(failures, "; "), bundleDir(opts.CacheDir))}
	}
	return embedded, "", []string{fmt.Sprintf("checks bundle could not be downloaded (%s): using the checks embedded in this build (trivy-checks %s)", strings.Join(failures, "; "), embedded.Version)}
}

// bundleMeta is Trivy's policy metadata.json plus where the bundle came from.
type bundleMeta struct {
	policy.Metadata
	Repository string `json:"Repository"`
}

func bundleDir(cacheDir string) string     { return filepath.Join(cacheDir, "policy") }
func bundleContent(cacheDir string) string { return filepath.Join(bundleDir(cacheDir), "content") }

func readBundleMeta(cacheDir string) (bundleMeta, error) {
	var m bundleMeta
	data, err := os.ReadFile(filepath.Join(bundleDir(cacheDir), "metadata.json"))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, err
	}
	if st, err := os.Stat(bundleContent(cacheDir)); err != nil || !st.IsDir() {
		return m, fmt.Errorf("no bundle content in %s", bundleDir(cacheDir))
	}
	return m, nil
}

// checksFrom resolves one bundle repository through our registry client and
// downloads the bundle with Trivy's own code when the cached one differs,
// into a temporary directory first so a failed download never replaces a
// working bundle.
func checksFrom(ctx context.Context, opts ConfigOptions, ref name.Reference) (ChecksInfo, string, error) {
	ropts := append(slices.Clone(opts.RemoteOptions), remote.WithContext(ctx))
	img, err := remote.Image(ref, ropts...)
	if err != nil {
		return ChecksInfo{}, "", err
	}
	digest, err := img.Digest()
	if err != nil {
		return ChecksInfo{}, "", err
	}
	info := ChecksInfo{Source: ref.String(), Version: digest.String()}
	if m, err := readBundleMeta(opts.CacheDir); err == nil && m.Digest == digest.String() {
		return info, bundleContent(opts.CacheDir), nil
	}
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return info, "", err
	}
	tmp, err := os.MkdirTemp(opts.CacheDir, checksDownloadPrefix)
	if err != nil {
		return info, "", err
	}
	defer os.RemoveAll(tmp)
	art := oci.NewArtifact(ref.String(), ftypes.RegistryOptions{}, oci.WithImage(img))
	client, err := policy.NewClient(tmp, true, ref.String(), policy.WithOCIArtifact(art))
	if err != nil {
		return info, "", err
	}
	if err := client.DownloadBuiltinChecks(ctx, ftypes.RegistryOptions{}); err != nil {
		return info, "", err
	}
	// Record the repository beside Trivy's own metadata.
	metaPath := filepath.Join(bundleDir(tmp), "metadata.json")
	var m bundleMeta
	if data, err := os.ReadFile(metaPath); err == nil {
		_ = json.Unmarshal(data, &m)
	}
	m.Repository = ref.String()
	data, err := json.Marshal(m)
	if err != nil {
		return info, "", err
	}
	if err := os.WriteFile(metaPath, data, 0o644); err != nil {
		return info, "", err
	}
	// Swap the new bundle in: the old one moves into the temporary
	// directory, which is removed on return.
	dst := bundleDir(opts.CacheDir)
	if _, err := os.Stat(dst); err == nil {
		if err := os.Rename(dst, filepath.Join(tmp, "previous")); err != nil {
			return info, "", err
		}
	}
	if err := os.Rename(bundleDir(tmp), dst); err != nil {
		return info, "", err
	}
	info.Downloaded = true
	return info, bundleContent(opts.CacheDir), nil
}

// moduleVersion is the version of a module linked into this binary.
func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				if d.Replace != nil {
					return d.Replace.Version
				}
				return d.Version
			}
		}
	}
	return "dev"
}

// checksDownloadPrefix names the temporary directory a checks bundle is
// unpacked into inside the cache directory, before it is swapped in.
const checksDownloadPrefix = ".checks-download-"
