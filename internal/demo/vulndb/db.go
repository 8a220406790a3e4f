package vulndb

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	dbtypes "github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc/bucket"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc/vulnerability"
	bolt "go.etcd.io/bbolt"
)

// Metadata describes the freshness of a built DB, as written to metadata.json.
type Metadata struct {
	UpdatedAt  time.Time
	NextUpdate time.Time
	// DownloadedAt is normally stamped by the downloader; set it when seeding
	// a cache directly so the DB looks like a completed download.
	DownloadedAt time.Time
}

// MetadataAt returns metadata for a DB built at t that expects its next
// update a day later, the cadence of the public Trivy DB.
func MetadataAt(t time.Time) Metadata {
	t = t.UTC().Truncate(time.Second)
	return Metadata{UpdatedAt: t, NextUpdate: t.Add(24 * time.Hour)}
}

// Trivy's file names inside the DB directory and the DB artifact.
const (
	dbFile       = "trivy.db"
	metadataFile = "metadata.json"
)

var dataSources = map[Ecosystem]dbtypes.DataSource{
	Alpine: {ID: vulnerability.Alpine, Name: "Alpine Secdb (fixture)", URL: "https://secdb.alpinelinux.org/"},
	Debian: {ID: vulnerability.Debian, Name: "Debian Security Tracker (fixture)", URL: "https://salsa.debian.org/security-tracker-team/security-tracker"},
	Npm:    {ID: vulnerability.GHSA, Name: "GitHub Security Advisory npm (fixture)", URL: "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Anpm"},
}

func bucketName(eco Ecosystem) (string, error) {
	switch eco {
	case Alpine:
		return bucket.NewAlpine(alpineStream).Name(), nil
	case Debian:
		return bucket.NewDebian(debianStream).Name(), nil
	case Npm:
		b, err := bucket.NewNpm(dataSources[Npm])
		if err != nil {
			return "", err
		}
		return b.Name(), nil
	}
	return "", fmt.Errorf("unknown ecosystem %q", eco)
}

// WriteDB writes trivy.db and metadata.json into dir, the layout Trivy expects
// under <cache-dir>/db. It opens its own bolt handle and only borrows trivy-db's
// schema writers, so it never touches the DB handle a running scan holds.
func WriteDB(dir string, meta Metadata) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write fixture DB: %w", err)
	}
	path := filepath.Join(dir, dbFile)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("write fixture DB: %w", err)
	}
	bdb, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("write fixture DB %s: %w", path, err)
	}
	if err := bdb.Update(fill); err != nil {
		_ = bdb.Close()
		return fmt.Errorf("write fixture DB %s: %w", path, err)
	}
	if err := bdb.Close(); err != nil {
		return fmt.Errorf("write fixture DB %s: %w", path, err)
	}
	err = metadata.NewClient(dir).Update(metadata.Metadata{
		Version:      db.SchemaVersion,
		UpdatedAt:    meta.UpdatedAt,
		NextUpdate:   meta.NextUpdate,
		DownloadedAt: meta.DownloadedAt,
	})
	if err != nil {
		return fmt.Errorf("write fixture DB metadata: %w", err)
	}
	return nil
}

// SeedCache installs the fixture DB in a Trivy cache directory (at
// <cacheDir>/db) as if it had been downloaded at meta.DownloadedAt, so a scan
// with the DB update skipped can use it.
func SeedCache(cacheDir string, meta Metadata) error {
	if meta.DownloadedAt.IsZero() {
		meta.DownloadedAt = meta.UpdatedAt
	}
	return WriteDB(filepath.Join(cacheDir, "db"), meta)
}

func fill(tx *bolt.Tx) error {
	dbc := db.Config{}
	for eco, ds := range dataSources {
		name, err := bucketName(eco)
		if err != nil {
			return err
		}
		if err := dbc.PutDataSource(tx, name, ds); err != nil {
			return err
		}
	}
	for _, a := range Advisories {
		name, err := bucketName(a.Ecosystem)
		if err != nil {
			return err
		}
		adv := dbtypes.Advisory{
			FixedVersion:       a.FixedVersion,
			VulnerableVersions: a.Vulnerable,
			PatchedVersions:    a.Patched,
		}
		if a.Status != "" {
			adv.Status = dbtypes.NewStatus(a.Status)
		}
		// The pointer matters: Advisory.MarshalJSON, which stores Status, has a pointer receiver.
		if err := dbc.PutAdvisory(tx, []string{name, a.Package}, a.ID, &adv); err != nil {
			return err
		}
	}
	for _, v := range Vulnerabilities {
		vuln, err := toDBVulnerability(v)
		if err != nil {
			return err
		}
		if err := dbc.PutVulnerability(tx, v.ID, vuln); err != nil {
			return err
		}
		if err := dbc.PutVulnerabilityID(tx, v.ID); err != nil {
			return err
		}
	}
	return nil
}

func toDBVulnerability(v Vulnerability) (dbtypes.Vulnerability, error) {
	out := dbtypes.Vulnerability{
		Title:       v.Title,
		Description: v.Description,
		References:  []string{"https://example.invalid/advisories/" + v.ID},
	}
	if out.Description == "" {
		out.Description = v.Title + " (fictional advisory in the offline fixture DB)."
	}
	if v.Severity == "" {
		return out, nil
	}
	sev, err := dbtypes.NewSeverity(v.Severity)
	if err != nil {
		return out, fmt.Errorf("fixture %s: %w", v.ID, err)
	}
	src := dbtypes.SourceID(v.SeveritySource)
	out.VendorSeverity = dbtypes.VendorSeverity{src: sev}
	if v.CVSSv3Score != 0 {
		out.CVSS = dbtypes.VendorCVSS{src: {V3Vector: v.CVSSv3Vector, V3Score: v.CVSSv3Score}}
	}
	return out, nil
}

// Archive returns the DB as db.tar.gz, the single layer of Trivy's DB artifact.
func Archive(meta Metadata) ([]byte, error) {
	dir, err := os.MkdirTemp("", "vulndb-")
	if err != nil {
		return nil, fmt.Errorf("build DB archive: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := WriteDB(dir, meta); err != nil {
		return nil, err
	}

	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range []string{dbFile, metadataFile} {
		if err := addFile(tw, filepath.Join(dir, name), name); err != nil {
			return nil, fmt.Errorf("build DB archive: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("build DB archive: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("build DB archive: %w", err)
	}
	return buf.Bytes(), nil
}

func addFile(tw *tar.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: st.Size(), ModTime: st.ModTime(), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
