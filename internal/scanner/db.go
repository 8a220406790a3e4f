package scanner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/aquasecurity/trivy-db/pkg/metadata"
	tdb "github.com/aquasecurity/trivy/pkg/db"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	"github.com/aquasecurity/trivy/pkg/oci"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	bolt "go.etcd.io/bbolt"

	"github.com/registry-actions/registry/internal/report"
)

// DBInfo describes the vulnerability DB a scan used.
type DBInfo struct {
	SchemaVersion int       `json:"schema_version"`
	UpdatedAt     time.Time `json:"updated_at"`
	NextUpdate    time.Time `json:"next_update"`
	DownloadedAt  time.Time `json:"downloaded_at"`
	// Repository the DB was downloaded from; empty when the cache was
	// restored from elsewhere and its origin is unknown.
	Repository string `json:"repository,omitempty"`
	// Digest of the DB artifact, when known.
	Digest string `json:"digest,omitempty"`
	// Downloaded is true when this scan fetched the DB.
	Downloaded bool `json:"downloaded"`
	// Server is the Trivy server whose DB was used in client/server mode.
	Server string `json:"server,omitempty"`
	// Source names the vulnerability data of findings Trivy did not
	// produce (e.g. ECR's scanning); empty for Trivy's DB.
	Source string `json:"source,omitempty"`
	// Age is how old the DB's data is (now - UpdatedAt) when the scan ran.
	Age        time.Duration `json:"-"`
	AgeSeconds int64         `json:"age_seconds"`
}

func (d *DBInfo) setAge(now time.Time) {
	if d.UpdatedAt.IsZero() {
		return
	}
	d.Age = now.Sub(d.UpdatedAt).Round(time.Second)
	d.AgeSeconds = int64(d.Age / time.Second)
}

// origin records where the cached DB came from; Trivy's metadata.json has no
// such field and the summary states the DB's source.
type origin struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest,omitempty"`
}

const (
	dbFileName     = "trivy.db"
	originFileName = "origin.json"
)

func dbDir(cacheDir string) string { return filepath.Join(cacheDir, "db") }

// ensureDB makes a usable DB available in <CacheDir>/db, downloading it from
// the first repository that answers when needed, and describes it.
func ensureDB(ctx context.Context, n normalized) (DBInfo, []string, error) {
	dir := dbDir(n.CacheDir)
	present := fileExists(filepath.Join(dir, dbFileName)) && fileExists(metadata.Path(dir))

	var info DBInfo
	var warnings []string
	switch {
	case n.SkipDBUpdate && !present:
		return info, nil, &Error{Kind: ErrNoDB, Msg: fmt.Sprintf(
			"no vulnerability DB in %s and skip-db-update is set: run once without skip-db-update to download it, or restore the cache directory (e.g. with actions/cache on cache-dir)", dir)}
	case !n.SkipDBUpdate:
		needs := true
		if present {
			var err error
			needs, err = tdb.NewClient(dir, true).NeedsUpdate(ctx, trivyVersion(), false)
			if err != nil {
				// A DB newer than this Trivy understands: replace it with one it does.
				needs = true
			}
			if !needs && validateDB(dir) != nil {
				needs = true
			}
		}
		if needs {
			var err error
			info.Repository, info.Digest, warnings, err = downloadDB(ctx, n, dir)
			if err != nil {
				return info, warnings, err
			}
			info.Downloaded = true
		}
	}

	if err := validateDB(dir); err != nil {
		return info, warnings, &Error{Kind: ErrCorruptDB, Msg: fmt.Sprintf(
			"vulnerability DB in %s is unusable (%v): delete that directory and scan again without skip-db-update", dir, err), Err: err}
	}
	meta, err := metadata.NewClient(dir).Get()
	if err != nil {
		return info, warnings, &Error{Kind: ErrCorruptDB, Msg: fmt.Sprintf(
			"vulnerability DB metadata in %s is unreadable (%v): delete that directory and scan again without skip-db-update", dir, err), Err: err}
	}
	if meta.Version != tdb.SchemaVersion {
		return info, warnings, &Error{Kind: ErrCorruptDB, Msg: fmt.Sprintf(
			"vulnerability DB in %s has schema %d but this scanner needs schema %d: scan without skip-db-update to download a matching DB", dir, meta.Version, tdb.SchemaVersion)}
	}
	info.SchemaVersion = meta.Version
	info.UpdatedAt = meta.UpdatedAt
	info.NextUpdate = meta.NextUpdate
	info.DownloadedAt = meta.DownloadedAt
	if !info.Downloaded {
		if o, err := readOrigin(dir); err == nil {
			info.Repository, info.Digest = o.Repository, o.Digest
		}
	}
	return info, warnings, nil
}

// downloadDB tries each repository in order. It moves on when a repository
// is rate limited, failing server-side or unreachable, and stops at an error
// that another mirror would not fix (bad credentials, wrong repository).
func downloadDB(ctx context.Context, n normalized, dir string) (repo, digest string, warnings []string, err error) {
	var failures []string
	for _, ref := range n.dbRefs {
		digest, err := downloadFrom(ctx, n, ref, dir)
		if err == nil {
			if len(failures) > 0 {
				warnings = append(warnings, fmt.Sprintf("vulnerability DB: fell back to %s after %s", ref, strings.Join(failures, "; ")))
			}
			return ref.String(), digest, warnings, nil
		}
		if ctx.Err() != nil {
			return "", "", warnings, timeoutError(ctx, err)
		}
		failures = append(failures, fmt.Sprintf("%s: %s", ref, describeFailure(err)))
		if !fallbackWorthy(err) {
			return "", "", warnings, &Error{Kind: ErrDBDownload, Err: err, Msg: fmt.Sprintf(
				"vulnerability DB download failed (%s): fix db-repository or the registry credentials for it", strings.Join(failures, "; "))}
		}
	}
	return "", "", warnings, &Error{Kind: ErrDBDownload, Msg: fmt.Sprintf(
		"vulnerability DB download failed from every repository (%s): retry later, add a reachable mirror to db-repository, or restore a cached DB and set skip-db-update", strings.Join(failures, "; "))}
}

// dbDownloadPrefix names the temporary directory a DB download unpacks into
// inside the cache directory (on its file system, so the rename is atomic).
const dbDownloadPrefix = ".db-download-"

// downloadFrom pulls one DB artifact through our registry client (auth,
// retries, user agent from RemoteOptions) and lets Trivy's own OCI artifact
// code unpack it, into a temporary directory first so a failed download never
// replaces a working DB.
func downloadFrom(ctx context.Context, n normalized, ref name.Reference, dir string) (string, error) {
	opts := n.RemoteOptions
	if n.DBRemoteOptions != nil {
		opts = n.DBRemoteOptions
	}
	opts = append(slices.Clone(opts), remote.WithContext(ctx))
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return "", err
	}
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(n.CacheDir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(n.CacheDir, dbDownloadPrefix)
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)

	art := oci.NewArtifact(ref.String(), ftypes.RegistryOptions{}, oci.WithImage(img))
	client := tdb.NewClient(tmp, true, tdb.WithOCIArtifact(art))
	if err := client.Download(ctx, tmp, ftypes.RegistryOptions{}); err != nil {
		return "", err
	}
	if err := validateDB(tmp); err != nil {
		return "", unusableDBError{err}
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, f := range []string{dbFileName, filepath.Base(metadata.Path(tmp))} {
		if err := os.Rename(filepath.Join(tmp, f), filepath.Join(dir, f)); err != nil {
			return "", err
		}
	}
	if err := writeOrigin(dir, origin{Repository: ref.String(), Digest: digest.String()}); err != nil {
		return "", err
	}
	return digest.String(), nil
}

// describeFailure puts the HTTP status first: registries often answer 429
// with a body that does not say so.
func describeFailure(err error) string {
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode != 0 {
		return fmt.Sprintf("HTTP %d %s", terr.StatusCode, report.OneLine(err.Error()))
	}
	return report.OneLine(err.Error())
}

type unusableDBError struct{ err error }

func (e unusableDBError) Error() string { return "downloaded DB is unusable: " + e.err.Error() }
func (e unusableDBError) Unwrap() error { return e.err }

func fallbackWorthy(err error) bool {
	var unusable unusableDBError
	if errors.As(err, &unusable) {
		return true
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		if terr.StatusCode == http.StatusTooManyRequests || terr.StatusCode >= 500 || terr.Temporary() {
			return true
		}
		// GCR's mirror intermittently loses blobs; Trivy moves on for it too.
		return hasCode(terr, transport.BlobUnknownErrorCode, transport.TooManyRequestsErrorCode, transport.UnavailableErrorCode)
	}
	var netErr net.Error
	var urlErr *url.Error
	return errors.As(err, &netErr) || errors.As(err, &urlErr) || errors.Is(err, io.ErrUnexpectedEOF)
}

// validateDB opens the bolt file read-only and checks it holds vulnerability
// data. A truncated or foreign file fails here with a clear message instead
// of crashing bbolt's memory map later.
func validateDB(dir string) (err error) {
	path := filepath.Join(dir, dbFileName)
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Size() == 0 {
		return errors.New("trivy.db is empty")
	}
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			err = fmt.Errorf("reading trivy.db crashed: %v", r)
		}
	}()
	bdb, err := bolt.Open(path, 0o444, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return errors.New("trivy.db is locked by another process")
		}
		return err
	}
	defer bdb.Close()
	return bdb.View(func(tx *bolt.Tx) error {
		for _, b := range []string{"vulnerability", "data-source"} {
			if tx.Bucket([]byte(b)) == nil {
				return fmt.Errorf("trivy.db has no %q bucket", b)
			}
		}
		return nil
	})
}

func readOrigin(dir string) (origin, error) {
	var o origin
	data, err := os.ReadFile(filepath.Join(dir, originFileName))
	if err != nil {
		return o, err
	}
	err = json.Unmarshal(data, &o)
	return o, err
}

func writeOrigin(dir string, o origin) error {
	data, err := json.Marshal(o)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, originFileName), data, 0o644)
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
