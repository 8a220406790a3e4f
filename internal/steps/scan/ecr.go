package scan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/registry-actions/registry/internal/ecr"
	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/scanner"
)

// Names of ECR's scanning, as the summary states the data's source.
const (
	SourceECRBasic    = "Amazon ECR basic scanning"
	SourceECREnhanced = "Amazon Inspector (ECR enhanced scanning)"
)

// runECR reads ECR's own findings for every platform manifest of each image
// and maps them into the scanner's model, so that reports, summary, outputs
// and the gate work exactly as with Trivy.
func runECR(ctx context.Context, opts Options) (*Result, error) {
	if opts.ECR.Client == nil {
		return nil, errors.New("scan: scanner: ecr needs an ECR client")
	}
	ignore, warnings, err := externalFilters(ctx, opts)
	if err != nil {
		return nil, err
	}
	clients := map[string]Findings{}
	var images []scanner.ExternalImage
	var scans []*ECRScan
	var sourceUpdated time.Time
	enhanced, basicUnfixed := false, false
	seen := map[string]bool{}
	for _, t := range opts.Targets {
		if t.Path != "" {
			return nil, failure.Invalidf("scan: scanner: ecr reads findings of images in ECR, not local files (%s): use scanner: trivy", t.Path)
		}
		ref, err := parseRef(opts, t.Ref)
		if err != nil {
			return nil, err
		}
		host, ok := registry.ParseECRHost(registry.HostOnly(ref.Context().RegistryStr()))
		if !ok {
			return nil, failure.Invalidf("scan: scanner: ecr reads findings of private ECR images, and %s is not one: use scanner: trivy", ref)
		}
		client, ok := clients[ref.Context().RegistryStr()]
		if !ok {
			if client, err = opts.ECR.Client(ctx, host); err != nil {
				return nil, fmt.Errorf("scan: %w", err)
			}
			clients[ref.Context().RegistryStr()] = client
		}
		ri, err := scanner.Resolve(ctx, ref, remoteOptions(ctx, opts), opts.Trivy.Platforms)
		if err != nil {
			return nil, trivyError(err)
		}
		if seen[ri.Digest] {
			opts.Log.Infof("%s has the digest of an image already scanned: not read again", ref)
			continue
		}
		seen[ri.Digest] = true
		repo := ref.Context().RepositoryStr()
		img := scanner.ExternalImage{Reference: ri.Reference, Repository: ri.Repository, Digest: ri.Digest}
		info := &ECRScan{Kind: "basic"}
		end := opts.Log.Group("ECR findings of " + ri.Reference)
		for _, p := range ri.Platforms {
			sf, err := client.ScanFindings(ctx, repo, p.Digest, opts.ECR.Wait)
			if err != nil {
				end()
				return nil, ecrError(ref, p, err)
			}
			opts.Log.Infof("%s (%s): ECR scan %s, %d findings", ri.Reference, p.Platform, sf.Status, len(sf.Findings))
			info.Status = sf.Status
			if sf.CompletedAt.After(info.CompletedAt) {
				info.CompletedAt = sf.CompletedAt
			}
			if sf.VulnerabilitySourceUpdatedAt.After(sourceUpdated) {
				sourceUpdated = sf.VulnerabilitySourceUpdatedAt
			}
			var fs []scanner.Finding
			for _, ef := range sf.Findings {
				if ef.Enhanced {
					enhanced = true
					info.Kind = "enhanced"
				}
				if ef.Enhanced && ef.Status != "" && !strings.EqualFold(ef.Status, "ACTIVE") {
					info.Inactive++
					continue
				}
				f := fromECR(ef)
				switch {
				case ignore.Ignored(f.ID):
					continue
				case !pkgTypeWanted(opts.Trivy.PkgTypes, f.PkgClass):
					continue
				case opts.Trivy.IgnoreUnfixed && f.FixedVersion == "":
					if !ef.Enhanced {
						// Basic scanning never knows a fix: dropping these
						// would pass every image silently.
						basicUnfixed = true
						break
					}
					continue
				}
				fs = append(fs, f)
			}
			img.Platforms = append(img.Platforms, scanner.ExternalPlatform{Platform: p.Platform, Digest: p.Digest, Findings: fs})
		}
		end()
		images = append(images, img)
		scans = append(scans, info)
	}
	if basicUnfixed {
		warnings = append(warnings, "ignore-unfixed does not apply to ECR basic findings, which never say whether a fix exists: they are all kept")
	}
	sres, err := scanner.Assemble(images, opts.Trivy.Severities)
	if err != nil {
		return nil, failure.Invalid(fmt.Errorf("scan: severity: %w", err))
	}
	source := SourceECRBasic
	if enhanced || slices.ContainsFunc(scans, func(s *ECRScan) bool { return strings.EqualFold(s.Status, "ACTIVE") }) {
		source = SourceECREnhanced
	}
	sres.SetDB(source, sourceUpdated, opts.Now())
	sres.Warnings = warnings
	res := newResult(ScannerECR, sres)
	res.Warnings = warnings
	for i := range res.Images {
		res.Images[i].ECR = scans[i]
	}
	res.logImages(opts.Log)
	return res, nil
}

// externalFilters reads the ignore file for findings another scanner
// made; VEX cannot apply to them (they carry no package URLs to match).
func externalFilters(ctx context.Context, opts Options) (*scanner.IgnoreList, []string, error) {
	var ignore *scanner.IgnoreList
	if opts.Trivy.IgnoreFile != "" {
		var err error
		if ignore, err = scanner.ReadIgnoreFile(ctx, opts.Trivy.IgnoreFile); err != nil {
			return nil, nil, failure.Invalid(fmt.Errorf("scan: %w", err))
		}
	}
	var warnings []string
	if len(opts.Trivy.VEX) > 0 {
		warnings = append(warnings, fmt.Sprintf("vex is not applied with scanner: %s (its findings carry no package URLs to match); use ignore-file, or scanner: trivy", opts.Scanner))
	}
	return ignore, warnings, nil
}

// fromECR maps one ECR finding. ECR's INFORMATIONAL is its lowest rated
// severity (LOW); UNDEFINED and UNTRIAGED are unrated (UNKNOWN).
func fromECR(e ecr.Finding) scanner.Finding {
	f := scanner.Finding{
		Kind:             scanner.KindVulnerability,
		ID:               e.ID,
		Severity:         ecrSeverity(e.Severity),
		PkgName:          e.PackageName,
		PkgPath:          e.FilePath,
		InstalledVersion: e.PackageVersion,
		FixedVersion:     e.FixedInVersion,
		Title:            e.Title,
		Description:      e.Description,
		PrimaryURL:       e.URI,
		CVSSScore:        e.Score,
		CVSSVector:       e.CVSSVector,
		PkgClass:         "os-pkgs",
		PkgType:          "os",
	}
	if e.Enhanced && e.PackageManager != "" && !strings.EqualFold(e.PackageManager, "OS") {
		f.PkgClass = "lang-pkgs"
		f.PkgType = strings.ToLower(e.PackageManager)
	}
	switch {
	case f.FixedVersion != "":
		f.Status = "fixed"
	case e.Enhanced:
		f.Status = "affected"
	}
	return f
}

func ecrSeverity(s string) string {
	switch s = strings.ToUpper(strings.TrimSpace(s)); s {
	case "CRITICAL", "HIGH", "MEDIUM", "LOW":
		return s
	case "INFORMATIONAL":
		return "LOW"
	}
	return "UNKNOWN"
}

func pkgTypeWanted(types []string, class string) bool {
	if len(types) == 0 {
		return true
	}
	if class == "lang-pkgs" {
		return slices.Contains(types, scanner.PkgTypeLibrary)
	}
	return slices.Contains(types, scanner.PkgTypeOS)
}

// ecrError words ECR's errors for the scan stage: a missing image is the
// images input's fault (exit 2); everything else could not run (exit 1).
func ecrError(ref name.Reference, p scanner.ResolvedPlatform, err error) error {
	if errors.Is(err, ecr.ErrImageNotFound) {
		return failure.Invalid(fmt.Errorf("scan: %w", err))
	}
	if errors.Is(err, ecr.ErrScanNotFound) || errors.Is(err, ecr.ErrTimeout) || errors.Is(err, ecr.ErrScanFailed) {
		return fmt.Errorf("scan: %s: %w", p.Platform, err)
	}
	return fmt.Errorf("scan: read ECR findings of %s (%s): %w", ref.Context(), p.Platform, err)
}
