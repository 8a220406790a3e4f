package vulndb

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	dbtypes "github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc/alpine"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc/debian"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestWriteDBReadsBackThroughTrivyDB(t *testing.T) {
	dir := t.TempDir()
	meta := MetadataAt(time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC))
	if err := WriteDB(dir, meta); err != nil {
		t.Fatal(err)
	}
	got, err := metadata.NewClient(dir).Get()
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 2 || !got.UpdatedAt.Equal(meta.UpdatedAt) || !got.NextUpdate.Equal(meta.UpdatedAt.Add(24*time.Hour)) || !got.DownloadedAt.IsZero() {
		t.Errorf("metadata = %+v", got)
	}

	if err := db.Init(dir); err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	advs, err := alpine.NewVulnSrc().Get(db.GetParams{Release: "3.23", PkgName: "musl"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range advs {
		ids = append(ids, a.VulnerabilityID+"="+a.FixedVersion)
		if a.DataSource == nil || a.DataSource.ID != "alpine" {
			t.Errorf("%s data source = %+v", a.VulnerabilityID, a.DataSource)
		}
	}
	slices.Sort(ids)
	if want := []string{"CVE-2099-0001=1.2.5-r11", "CVE-2099-0006=1.2.5-r1"}; !slices.Equal(ids, want) {
		t.Errorf("musl advisories = %v, want %v", ids, want)
	}

	advs, err = debian.NewVulnSrc().Get(db.GetParams{Release: "12", PkgName: "zlib"})
	if err != nil {
		t.Fatal(err)
	}
	if len(advs) != 1 || advs[0].Status != dbtypes.StatusWillNotFix || advs[0].FixedVersion != "" {
		t.Errorf("zlib advisories = %+v, want one unfixed will_not_fix", advs)
	}

	advs, err = db.Config{}.GetAdvisories("npm::", "lodash")
	if err != nil {
		t.Fatal(err)
	}
	if len(advs) != 1 || !slices.Equal(advs[0].VulnerableVersions, []string{"<4.17.21"}) || advs[0].DataSource.ID != "ghsa" {
		t.Errorf("lodash advisories = %+v", advs)
	}

	v, err := db.Config{}.GetVulnerability("CVE-2099-0001")
	if err != nil {
		t.Fatal(err)
	}
	if v.VendorSeverity["nvd"] != dbtypes.SeverityCritical || v.CVSS["nvd"].V3Score != 9.8 {
		t.Errorf("CVE-2099-0001 = %+v", v)
	}
	v, err = db.Config{}.GetVulnerability("CVE-2099-0104")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.VendorSeverity) != 0 {
		t.Errorf("CVE-2099-0104 must have no severity (UNKNOWN), got %v", v.VendorSeverity)
	}
}

func TestArtifactIsTrivyShaped(t *testing.T) {
	img, err := Artifact(MetadataAt(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != DBConfigMediaType || len(m.Layers) != 1 {
		t.Fatalf("manifest = %+v", m)
	}
	l := m.Layers[0]
	if l.MediaType != DBLayerMediaType || l.Annotations["org.opencontainers.image.title"] != "db.tar.gz" {
		t.Errorf("layer = %+v", l)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	names := tarNames(t, rc, true)
	if !slices.Equal(names, []string{"trivy.db", "metadata.json"}) {
		t.Errorf("db.tar.gz holds %v", names)
	}
}

func tarNames(t *testing.T, r io.Reader, gzipped bool) []string {
	t.Helper()
	if gzipped {
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	tr := tar.NewReader(r)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

func fileIn(t *testing.T, l v1.Layer, name string) string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in layer: %v", name, err)
		}
		if h.Name == name {
			var b bytes.Buffer
			if _, err := io.Copy(&b, tr); err != nil {
				t.Fatal(err)
			}
			return b.String()
		}
	}
}

func TestIndexShape(t *testing.T) {
	idx, err := Index()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Index()
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := idx.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("index is not reproducible: %s then %s", d1, d2)
	}

	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 3 {
		t.Fatalf("%d manifests, want 2 platforms and an attestation", len(im.Manifests))
	}
	var platforms []string
	for _, d := range im.Manifests[:2] {
		platforms = append(platforms, d.Platform.String())
	}
	if !slices.Equal(platforms, []string{PlatformAlpine, PlatformDebian}) {
		t.Errorf("platforms = %v", platforms)
	}
	att := im.Manifests[2]
	if att.Platform.OS != "unknown" || att.Annotations["vnd.docker.reference.type"] != "attestation-manifest" ||
		att.Annotations["vnd.docker.reference.digest"] != im.Manifests[0].Digest.String() {
		t.Errorf("attestation descriptor = %+v", att)
	}

	shared, err := SharedLayerDiffID()
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range im.Manifests[:2] {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.RootFS.DiffIDs) != 2 || cfg.RootFS.DiffIDs[0] != shared {
			t.Errorf("platform %d layers = %v, want the shared layer %s first", i, cfg.RootFS.DiffIDs, shared)
		}
		if p := (&v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}).String(); p != platforms[i] {
			t.Errorf("config platform %s, descriptor %s", p, platforms[i])
		}
	}
}

func TestLayersCarryThePackages(t *testing.T) {
	a, err := AlpineLayer()
	if err != nil {
		t.Fatal(err)
	}
	apk := fileIn(t, a, "lib/apk/db/installed")
	for _, p := range AlpinePackages {
		if !strings.Contains(apk, "P:"+p.Name+"\nV:"+p.Version+"\n") || !strings.Contains(apk, "o:"+p.source()+"\n") {
			t.Errorf("apk database lacks %s %s", p.Name, p.Version)
		}
	}
	if got := fileIn(t, a, "etc/alpine-release"); got != AlpineRelease+"\n" {
		t.Errorf("alpine-release = %q", got)
	}

	d, err := DebianLayer()
	if err != nil {
		t.Fatal(err)
	}
	status := fileIn(t, d, "var/lib/dpkg/status")
	if !strings.Contains(status, "Package: zlib1g\nStatus: install ok installed\n") || !strings.Contains(status, "Source: zlib\nVersion: 1:1.2.13.dfsg-1\n") {
		t.Errorf("dpkg status:\n%s", status)
	}

	s, err := SharedLayer()
	if err != nil {
		t.Fatal(err)
	}
	if got := fileIn(t, s, NpmPackagePath("lodash")); !strings.Contains(got, `"version": "4.17.20"`) {
		t.Errorf("lodash package.json = %s", got)
	}
}

// TestExpectedMatchesFixture guards the hand-written expectations against
// typos: every expected finding names an installed package and an advisory.
func TestExpectedMatchesFixture(t *testing.T) {
	installed := map[string]Package{}
	for _, p := range slices.Concat(AlpinePackages, DebianPackages, NpmPackages) {
		installed[p.Name] = p
	}
	for _, f := range Expected {
		p, ok := installed[f.PkgName]
		if !ok || p.Version != f.InstalledVersion {
			t.Errorf("%s: package %s %s is not installed", f.VulnerabilityID, f.PkgName, f.InstalledVersion)
			continue
		}
		found := slices.ContainsFunc(Advisories, func(a Advisory) bool { return a.ID == f.VulnerabilityID && a.Package == p.source() })
		if !found {
			t.Errorf("%s: no advisory for %s", f.VulnerabilityID, p.source())
		}
	}
	for _, a := range Advisories {
		if !slices.ContainsFunc(Vulnerabilities, func(v Vulnerability) bool { return v.ID == a.ID }) {
			t.Errorf("advisory %s has no vulnerability details", a.ID)
		}
	}
}

func TestWriteSampleLayout(t *testing.T) {
	dir := t.TempDir()
	if err := WriteSampleLayout(dir); err != nil {
		t.Fatal(err)
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	// layout.Write stores the sample index itself as index.json.
	got, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Index()
	wantDigest, _ := want.Digest()
	if got != wantDigest {
		t.Errorf("layout index.json is %s, want the sample index %s", got, wantDigest)
	}
}

func TestLargeIndexIsDeterministicAndShared(t *testing.T) {
	o := LargeOptions{OSPackages: 20, NpmPackages: 10, SharedBytes: 300 << 10, PlatformBytes: 600 << 10}
	a, err := LargeIndex(o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LargeIndex(o)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Fatalf("two builds differ: %s %s", da, db)
	}
	im, err := a.IndexManifest()
	if err != nil || len(im.Manifests) != 2 {
		t.Fatalf("manifests: %v %v", im, err)
	}
	var layerSets [][]v1.Hash
	var size int64
	for _, m := range im.Manifests {
		img, err := a.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		ls, _ := img.Layers()
		var ds []v1.Hash
		for _, l := range ls {
			d, _ := l.Digest()
			s, _ := l.Size()
			size += s
			ds = append(ds, d)
		}
		layerSets = append(layerSets, ds)
	}
	if len(layerSets[0]) != 4 || layerSets[0][0] != layerSets[1][0] || layerSets[0][1] != layerSets[1][1] || layerSets[0][2] == layerSets[1][2] {
		t.Errorf("layers: %v: want npm and assets shared, OS layers distinct", layerSets)
	}
	// Filler is half random: it does not compress away.
	if size < int64(o.SharedBytes+o.PlatformBytes) {
		t.Errorf("compressed layers total %d bytes, want at least %d", size, o.SharedBytes+o.PlatformBytes)
	}
}
