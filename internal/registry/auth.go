package registry

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// ECRTokens fetches a registry password from ECR's GetAuthorizationToken,
// through the AWS SDK's default credential chain.
type ECRTokens interface {
	AuthorizationToken(ctx context.Context, host ECRHost) (username, password string, expiresAt time.Time, err error)
}

// Credentials are every source of registry credentials the user can give.
// Which one a registry gets depends on its kind; see Keychain.
type Credentials struct {
	// GitHubToken and GitHubActor authenticate to ghcr.io.
	GitHubToken string
	GitHubActor string
	// Username and Password are explicit credentials for registries that
	// are neither ECR nor (when GitHubToken is set) ghcr.io. Username also
	// replaces GitHubActor for ghcr.io.
	Username string
	Password string
	// DockerConfig, when not nil, is consulted after the sources above
	// (authn.DefaultKeychain reads $DOCKER_CONFIG/config.json and runs
	// credential helpers).
	DockerConfig authn.Keychain
	// ECR supplies tokens for private ECR registries; nil falls back to
	// DockerConfig.
	ECR ECRTokens
	// Mask is called with every secret before it can be printed.
	Mask func(string)
}

// Keychain picks credentials by registry kind, without `docker login`:
//
//   - ghcr.io: github-token with GITHUB_ACTOR (or registry-username);
//   - private ECR: GetAuthorizationToken through the AWS default credential
//     chain, one token per registry per run;
//   - anything else: registry-username/registry-password;
//
// and then the Docker config, then anonymous access.
type Keychain struct {
	creds Credentials
	mu    sync.Mutex
	ecr   map[string]*ecrEntry
}

type ecrEntry struct {
	once sync.Once
	auth authn.Authenticator
	err  error
}

// NewKeychain returns a keychain over creds.
func NewKeychain(creds Credentials) *Keychain {
	if creds.Mask == nil {
		creds.Mask = func(string) {}
	}
	for _, s := range []string{creds.GitHubToken, creds.Password} {
		if s != "" {
			creds.Mask(s)
		}
	}
	return &Keychain{creds: creds, ecr: map[string]*ecrEntry{}}
}

// Resolve implements authn.Keychain.
func (k *Keychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), target)
}

// ResolveContext implements authn.ContextKeychain.
func (k *Keychain) ResolveContext(ctx context.Context, target authn.Resource) (authn.Authenticator, error) {
	host := target.RegistryStr()
	switch KindOf(host) {
	case KindGHCR:
		if k.creds.GitHubToken != "" {
			user := k.creds.Username
			if user == "" {
				user = k.creds.GitHubActor
			}
			if user == "" {
				// ghcr.io checks the token, not the name; any name will do.
				user = "github-actions"
			}
			return &authn.Basic{Username: user, Password: k.creds.GitHubToken}, nil
		}
	case KindECR:
		if ecrHost, ok := ParseECRHost(HostOnly(host)); ok && k.creds.ECR != nil {
			auth, err := k.ecrAuth(ctx, host, ecrHost)
			if err == nil {
				return auth, nil
			}
			// A docker login done earlier in the job still works; prefer it
			// to failing, but only when it actually holds this registry.
			if fallback := k.dockerConfig(ctx, target); fallback != authn.Anonymous {
				return fallback, nil
			}
			return nil, err
		}
	default:
		if k.creds.Username != "" || k.creds.Password != "" {
			return &authn.Basic{Username: k.creds.Username, Password: k.creds.Password}, nil
		}
	}
	return k.dockerConfig(ctx, target), nil
}

func (k *Keychain) ecrAuth(ctx context.Context, host string, ecrHost ECRHost) (authn.Authenticator, error) {
	k.mu.Lock()
	e, ok := k.ecr[host]
	if !ok {
		e = &ecrEntry{}
		k.ecr[host] = e
	}
	k.mu.Unlock()
	e.once.Do(func() {
		user, pass, _, err := k.creds.ECR.AuthorizationToken(ctx, ecrHost)
		if err != nil {
			e.err = fmt.Errorf("ECR credentials for %s: %w", host, err)
			return
		}
		k.creds.Mask(pass)
		e.auth = &authn.Basic{Username: user, Password: pass}
	})
	return e.auth, e.err
}

func (k *Keychain) dockerConfig(ctx context.Context, target authn.Resource) authn.Authenticator {
	if k.creds.DockerConfig == nil {
		return authn.Anonymous
	}
	auth, err := authn.Resolve(ctx, k.creds.DockerConfig, target)
	if err != nil || auth == nil {
		return authn.Anonymous
	}
	if auth == authn.Anonymous {
		return auth
	}
	return &maskingAuth{inner: auth, mask: k.creds.Mask}
}

// maskingAuth masks whatever secret the Docker config yields the moment it
// is read, so a helper's token is hidden before any log line could hold it.
type maskingAuth struct {
	inner authn.Authenticator
	mask  func(string)
}

func (m *maskingAuth) Authorization() (*authn.AuthConfig, error) {
	cfg, err := m.inner.Authorization()
	if err != nil || cfg == nil {
		return cfg, err
	}
	for _, s := range []string{cfg.Password, cfg.Auth, cfg.IdentityToken, cfg.RegistryToken} {
		if s != "" {
			m.mask(s)
		}
	}
	return cfg, nil
}

// HostOnly strips the port from a registry host (host:port, [v6]:port).
func HostOnly(registry string) string {
	for i := len(registry) - 1; i >= 0; i-- {
		if registry[i] == ':' {
			return registry[:i]
		}
		if registry[i] < '0' || registry[i] > '9' {
			break
		}
	}
	return registry
}
