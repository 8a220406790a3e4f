package fakesigstore

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Claims are the GitHub Actions OIDC claims the token endpoint puts in every
// token. Field names follow GitHub's documented claim names.
type Claims struct {
	Subject              string `json:"sub"`
	Repository           string `json:"repository"`
	RepositoryID         string `json:"repository_id"`
	RepositoryOwner      string `json:"repository_owner"`
	RepositoryOwnerID    string `json:"repository_owner_id"`
	RepositoryVisibility string `json:"repository_visibility"`
	Ref                  string `json:"ref"`
	RefType              string `json:"ref_type"`
	SHA                  string `json:"sha"`
	Workflow             string `json:"workflow"`
	WorkflowRef          string `json:"workflow_ref"`
	WorkflowSHA          string `json:"workflow_sha"`
	JobWorkflowRef       string `json:"job_workflow_ref"`
	JobWorkflowSHA       string `json:"job_workflow_sha"`
	EventName            string `json:"event_name"`
	RunID                string `json:"run_id"`
	RunNumber            string `json:"run_number"`
	RunAttempt           string `json:"run_attempt"`
	RunnerEnvironment    string `json:"runner_environment"`
	Actor                string `json:"actor"`
	ActorID              string `json:"actor_id"`
}

// DefaultClaims describe a push to main of org/repo running ci.yml.
func DefaultClaims() Claims {
	const sha = "0123456789abcdef0123456789abcdef01234567"
	return Claims{
		Subject:              "repo:org/repo:ref:refs/heads/main",
		Repository:           "org/repo",
		RepositoryID:         "123456",
		RepositoryOwner:      "org",
		RepositoryOwnerID:    "654321",
		RepositoryVisibility: "public",
		Ref:                  "refs/heads/main",
		RefType:              "branch",
		SHA:                  sha,
		Workflow:             "ci",
		WorkflowRef:          "org/repo/.github/workflows/ci.yml@refs/heads/main",
		WorkflowSHA:          sha,
		JobWorkflowRef:       "org/repo/.github/workflows/ci.yml@refs/heads/main",
		JobWorkflowSHA:       sha,
		EventName:            "push",
		RunID:                "1000",
		RunNumber:            "7",
		RunAttempt:           "1",
		RunnerEnvironment:    "github-hosted",
		Actor:                "octocat",
		ActorID:              "1",
	}
}

// tokenIssuer mints RS256 JWTs the way GitHub's token service does.
type tokenIssuer struct {
	key    *rsa.PrivateKey
	signer jose.Signer
	issuer string
	ttl    time.Duration
}

func newTokenIssuer(issuer string) (*tokenIssuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "fake-actions-key"))
	if err != nil {
		return nil, err
	}
	return &tokenIssuer{key: key, signer: signer, issuer: issuer, ttl: 5 * time.Minute}, nil
}

func (ti *tokenIssuer) mint(c Claims, audience string, now time.Time) (string, error) {
	std := jwt.Claims{
		Issuer:    ti.issuer,
		Subject:   c.Subject,
		Audience:  jwt.Audience{audience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Second)),
		Expiry:    jwt.NewNumericDate(now.Add(ti.ttl)),
		ID:        fmt.Sprintf("jti-%d", now.UnixNano()),
	}
	return jwt.Signed(ti.signer).Claims(std).Claims(c).Serialize()
}

// verify checks a token minted by this issuer for the given audience and
// returns its claims; the CA calls it the way Fulcio verifies against the
// issuer's JWKS.
func (ti *tokenIssuer) verify(raw, audience string, now time.Time) (jwt.Claims, Claims, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return jwt.Claims{}, Claims{}, fmt.Errorf("parse token: %w", err)
	}
	var std jwt.Claims
	var gh Claims
	if err := tok.Claims(&ti.key.PublicKey, &std, &gh); err != nil {
		return jwt.Claims{}, Claims{}, fmt.Errorf("token signature: %w", err)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: ti.issuer, AnyAudience: jwt.Audience{audience}, Time: now}, 0); err != nil {
		return jwt.Claims{}, Claims{}, fmt.Errorf("token claims: %w", err)
	}
	return std, gh, nil
}

// tokenHandler serves GET <ACTIONS_ID_TOKEN_REQUEST_URL>&audience=X with
// "Authorization: bearer <ACTIONS_ID_TOKEN_REQUEST_TOKEN>" and answers
// {"value": "<jwt>"} like the Actions runtime.
func (s *Sigstore) tokenHandler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || token != s.RequestToken {
		http.Error(w, `{"message":"Unauthorized"}`, http.StatusUnauthorized)
		return
	}
	audience := r.URL.Query().Get("audience")
	if audience == "" {
		// GitHub's default audience is the repository owner's URL.
		audience = "https://github.com/" + s.claims().RepositoryOwner
	}
	jwtString, err := s.tokens.mint(s.claims(), audience, time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.count(&s.tokenRequests)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"count": 1, "value": jwtString})
}
