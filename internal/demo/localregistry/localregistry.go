// Package localregistry runs a real OCI registry — distribution/distribution
// v3, the code behind Docker's registry:2 image — inside this process on
// loopback, optionally with TLS from its own CA, htpasswd basic auth and
// deletes enabled. The demo command runs its job against it and the tests
// use it as the registry the binary talks to.
package localregistry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	// Registered by import: the in-memory storage driver and htpasswd auth.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

// Options configure a registry.
type Options struct {
	// TLS serves HTTPS with a certificate from a fresh CA (see Registry.CAPEM).
	TLS bool
	// Hostnames are extra names the TLS certificate is valid for, so a test
	// can route e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com here.
	Hostnames []string
	// Users enables htpasswd basic auth with these user → password pairs.
	Users map[string]string
	// Deletes enables manifest and blob deletion (off in distribution by default).
	Deletes bool
	// Handler wraps the registry's handler, e.g. with a fault injector or a
	// request counter.
	Wrap func(http.Handler) http.Handler
	// Disk stores blobs in files under a temporary directory instead of
	// memory. Distribution's in-memory driver copies on every append, which
	// makes large uploads slow; benchmarks want the registry out of the way.
	Disk bool
}

// Registry is a running registry.
type Registry struct {
	// Host is host:port on 127.0.0.1.
	Host string
	// URL is scheme://host:port.
	URL string
	// CAPEM is the PEM CA certificate clients must trust (TLS only).
	CAPEM []byte
	// CertPool holds the CA (TLS only).
	CertPool *x509.CertPool
	// TLSConfig is the server's TLS configuration (TLS only).
	TLSConfig *tls.Config

	srv    *http.Server
	ln     net.Listener
	app    *handlers.App
	tmpDir string
	done   chan struct{}
}

// Start runs a registry on a random loopback port.
func Start(ctx context.Context, opts Options) (*Registry, error) {
	// The registry logs every request through logrus; a library user does
	// not want that on their terminal.
	logrus.SetOutput(io.Discard)
	logrus.SetLevel(logrus.ErrorLevel)

	tmp, err := os.MkdirTemp("", "localregistry-")
	if err != nil {
		return nil, fmt.Errorf("local registry: %w", err)
	}
	r := &Registry{tmpDir: tmp, done: make(chan struct{})}
	driver := configuration.Storage{"inmemory": configuration.Parameters{}}
	if opts.Disk {
		driver = configuration.Storage{"filesystem": configuration.Parameters{"rootdirectory": filepath.Join(tmp, "data")}}
	}
	cfg := &configuration.Configuration{
		Version: "0.1",
		Storage: configuration.Storage{
			"delete":      configuration.Parameters{"enabled": opts.Deletes},
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
		},
	}
	for k, v := range driver {
		cfg.Storage[k] = v
	}
	// Without a limit the catalog endpoint refuses every page size.
	cfg.Catalog.MaxEntries = 1000
	cfg.Log.Level = "error"
	cfg.Log.AccessLog.Disabled = true
	cfg.HTTP.Secret = "localregistry-secret"
	cfg.HTTP.Headers = http.Header{"X-Content-Type-Options": []string{"nosniff"}}
	if len(opts.Users) > 0 {
		path := filepath.Join(tmp, "htpasswd")
		if err := writeHtpasswd(path, opts.Users); err != nil {
			r.Close()
			return nil, err
		}
		cfg.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "localregistry", "path": path}}
	}

	r.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("local registry: listen: %w", err)
	}
	r.Host = r.ln.Addr().String()

	r.app = handlers.NewApp(ctx, cfg)
	var handler http.Handler = r.app
	if opts.Wrap != nil {
		handler = opts.Wrap(handler)
	}
	// Clients racing http against https leave handshake errors the server
	// would print; they are not failures of the registry.
	r.srv = &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}

	ln := r.ln
	r.URL = "http://" + r.Host
	if opts.TLS {
		tlsCfg, caPEM, pool, err := selfSignedTLS(append([]string{"127.0.0.1", "localhost"}, opts.Hostnames...))
		if err != nil {
			r.Close()
			return nil, err
		}
		r.CAPEM, r.CertPool, r.TLSConfig = caPEM, pool, tlsCfg
		ln = tls.NewListener(ln, tlsCfg)
		r.URL = "https://" + r.Host
	}
	go func() {
		defer close(r.done)
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "local registry stopped: %v\n", err)
		}
	}()
	return r, nil
}

// Close stops the registry and removes its files.
func (r *Registry) Close() error {
	var err error
	if r.srv != nil {
		// Close, not Shutdown: Shutdown waits five seconds for connections
		// that were opened but never used (clients racing http against
		// https open such), and nothing here needs a graceful drain.
		err = r.srv.Close()
		<-r.done
	}
	if r.app != nil {
		r.app.Shutdown()
	}
	if r.tmpDir != "" {
		os.RemoveAll(r.tmpDir)
	}
	return err
}

func writeHtpasswd(path string, users map[string]string) error {
	var b strings.Builder
	for user, pass := range users {
		// MinCost: the registry checks the hash on every request; tests
		// make thousands.
		hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
		if err != nil {
			return fmt.Errorf("local registry: htpasswd: %w", err)
		}
		fmt.Fprintf(&b, "%s:%s\n", user, hash)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// selfSignedTLS makes a CA and a server certificate for hosts.
func selfSignedTLS(hosts []string) (*tls.Config, []byte, *x509.CertPool, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localregistry test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			srvTmpl.IPAddresses = append(srvTmpl.IPAddresses, ip)
		} else {
			srvTmpl.DNSNames = append(srvTmpl.DNSNames, h)
		}
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{{
			Certificate: [][]byte{srvDER, caDER},
			PrivateKey:  srvKey,
		}},
	}
	return cfg, caPEM, pool, nil
}
