package fakesigstore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// KMS speaks the subset of AWS KMS's JSON 1.1 API that Sigstore's awskms
// provider uses to sign (DescribeKey, GetPublicKey, Sign) with ECDSA P-256
// keys held in memory. Point the AWS SDK at it with Env().
type KMS struct {
	URL     string
	Region  string
	Account string

	server *httptest.Server
	dir    string

	mu      sync.Mutex
	keys    map[string]*kmsKey // by key id
	aliases map[string]string  // alias name -> key id
	signs   int
}

type kmsKey struct {
	id      string
	priv    *ecdsa.PrivateKey
	created time.Time
	denied  bool
}

// StartKMS runs the KMS endpoint on 127.0.0.1 until the test ends.
func StartKMS(t testing.TB) *KMS {
	t.Helper()
	k := &KMS{Region: "us-east-1", Account: "111122223333", keys: map[string]*kmsKey{}, aliases: map[string]string{}, dir: t.TempDir()}
	k.server = httptest.NewServer(http.HandlerFunc(k.handle))
	t.Cleanup(k.server.Close)
	k.URL = k.server.URL
	return k
}

// Env returns what the AWS SDK needs to talk to this endpoint with dummy
// credentials and no shared config files.
func (k *KMS) Env() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL_KMS":        k.URL,
		"AWS_REGION":                  k.Region,
		"AWS_ACCESS_KEY_ID":           "AKIDFAKEKMS",
		"AWS_SECRET_ACCESS_KEY":       "fake-secret",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             filepath.Join(k.dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(k.dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
	}
}

// CreateKey makes an ECC_NIST_P256 signing key reachable as alias/<alias>
// and returns its public key.
func (k *KMS) CreateKey(alias string) (crypto.PublicKey, error) {
	return k.create(alias, false)
}

// CreateDeniedKey makes a key whose use is refused with AccessDeniedException,
// as when the caller's role lacks kms:Sign.
func (k *KMS) CreateDeniedKey(alias string) (crypto.PublicKey, error) {
	return k.create(alias, true)
}

func (k *KMS) create(alias string, denied bool) (crypto.PublicKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	id := newKeyUUID()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys[id] = &kmsKey{id: id, priv: priv, created: time.Now(), denied: denied}
	k.aliases["alias/"+alias] = id
	return priv.Public(), nil
}

// Signs counts successful Sign calls.
func (k *KMS) Signs() int { k.mu.Lock(); defer k.mu.Unlock(); return k.signs }

func (k *KMS) arn(id string) string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", k.Region, k.Account, id)
}

// lookup resolves the KeyId forms KMS accepts: key id, key ARN, alias name
// and alias ARN.
func (k *KMS) lookup(keyID string) (*kmsKey, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if i := strings.Index(keyID, ":alias/"); strings.HasPrefix(keyID, "arn:") && i >= 0 {
		keyID = keyID[i+1:]
	}
	if i := strings.Index(keyID, ":key/"); strings.HasPrefix(keyID, "arn:") && i >= 0 {
		keyID = keyID[i+len(":key/"):]
	}
	if id, ok := k.aliases[keyID]; ok {
		keyID = id
	}
	key, ok := k.keys[keyID]
	return key, ok
}

func kmsError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

func (k *KMS) handle(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	if r.Method != http.MethodPost || !ok {
		kmsError(w, http.StatusBadRequest, "UnknownOperationException", "unknown operation")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		kmsError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	var req struct {
		KeyID            string `json:"KeyId"`
		Message          []byte `json:"Message"`
		MessageType      string `json:"MessageType"`
		SigningAlgorithm string `json:"SigningAlgorithm"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		kmsError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	key, found := k.lookup(req.KeyID)
	if !found {
		kmsError(w, http.StatusBadRequest, "NotFoundException", fmt.Sprintf("Key '%s' does not exist", req.KeyID))
		return
	}
	if key.denied {
		kmsError(w, http.StatusBadRequest, "AccessDeniedException",
			fmt.Sprintf("User: arn:aws:sts::%s:assumed-role/ci/runner is not authorized to perform: kms:%s on resource: %s because no identity-based policy allows the kms:%s action", k.Account, op, k.arn(key.id), op))
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch op {
	case "DescribeKey":
		_ = json.NewEncoder(w).Encode(map[string]any{"KeyMetadata": map[string]any{
			"AWSAccountId":          k.Account,
			"Arn":                   k.arn(key.id),
			"CreationDate":          float64(key.created.Unix()),
			"CustomerMasterKeySpec": "ECC_NIST_P256",
			"Enabled":               true,
			"KeyId":                 key.id,
			"KeyManager":            "CUSTOMER",
			"KeySpec":               "ECC_NIST_P256",
			"KeyState":              "Enabled",
			"KeyUsage":              "SIGN_VERIFY",
			"Origin":                "AWS_KMS",
			"SigningAlgorithms":     []string{"ECDSA_SHA_256"},
		}})
	case "GetPublicKey":
		der, err := x509.MarshalPKIXPublicKey(key.priv.Public())
		if err != nil {
			kmsError(w, http.StatusInternalServerError, "KMSInternalException", err.Error())
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"KeyId":                 k.arn(key.id),
			"PublicKey":             der,
			"CustomerMasterKeySpec": "ECC_NIST_P256",
			"KeySpec":               "ECC_NIST_P256",
			"KeyUsage":              "SIGN_VERIFY",
			"SigningAlgorithms":     []string{"ECDSA_SHA_256"},
		})
	case "Sign":
		if req.SigningAlgorithm != "ECDSA_SHA_256" {
			kmsError(w, http.StatusBadRequest, "InvalidKeyUsageException", "unsupported signing algorithm "+req.SigningAlgorithm)
			return
		}
		if req.MessageType != "DIGEST" || len(req.Message) != 32 {
			kmsError(w, http.StatusBadRequest, "ValidationException", "this endpoint signs SHA-256 digests only")
			return
		}
		sig, err := ecdsa.SignASN1(rand.Reader, key.priv, req.Message)
		if err != nil {
			kmsError(w, http.StatusInternalServerError, "KMSInternalException", err.Error())
			return
		}
		k.mu.Lock()
		k.signs++
		k.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{
			"KeyId":            k.arn(key.id),
			"Signature":        sig,
			"SigningAlgorithm": "ECDSA_SHA_256",
		})
	default:
		kmsError(w, http.StatusBadRequest, "UnsupportedOperationException", op+" is not supported by this endpoint")
	}
}

func newKeyUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
