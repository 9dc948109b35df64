package auth

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
)

// Signer signs requests as the OCI SDKs do, for tests and tools that talk
// to Gantry without an SDK client. The zero value is not usable: KeyID and
// Key must be set.
type Signer struct {
	KeyID string // tenancy/user/fingerprint
	Key   *rsa.PrivateKey
	// Now is the clock for the date header; nil means time.Now.
	Now func() time.Time
	// XDate signs an x-date header instead of date (as the TypeScript SDK does).
	XDate bool
	// ExcludeBody signs no body headers, as the SDKs do for PutObject and UploadPart.
	ExcludeBody bool
}

// Sign sets the date (or x-date), the body headers for POST, PUT and
// PATCH (unless ExcludeBody) and the Authorization header of r. It reads
// and replaces r.Body to hash it.
func (s *Signer) Sign(r *http.Request) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	dateHeader := "date"
	if s.XDate {
		dateHeader = "x-date"
	}
	if r.Header.Get(dateHeader) == "" {
		r.Header.Set(dateHeader, now().UTC().Format(http.TimeFormat))
	}
	headers := []string{dateHeader, "(request-target)", "host"}
	bodyMethod := r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch
	if bodyMethod && !s.ExcludeBody {
		var body []byte
		if r.Body != nil {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return fmt.Errorf("sign: read body: %w", err)
			}
			r.Body.Close()
			body = b
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		r.ContentLength = int64(len(body))
		sum := sha256.Sum256(body)
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
		r.Header.Set("x-content-sha256", base64.StdEncoding.EncodeToString(sum[:]))
		if r.Header.Get("Content-Type") == "" {
			r.Header.Set("Content-Type", "application/json")
		}
		headers = append(headers, "content-length", "content-type", "x-content-sha256")
	}
	if r.Host == "" {
		r.Host = r.URL.Host
	}
	signing, err := SigningString(r, headers)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.Key, crypto.SHA256, digest[:])
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	r.Header.Set("Authorization", fmt.Sprintf(`Signature version="1",headers="%s",keyId="%s",algorithm="rsa-sha256",signature="%s"`,
		strings.Join(headers, " "), s.KeyID, base64.StdEncoding.EncodeToString(sig)))
	return nil
}

// LoadSigner builds a Signer from a profile of an OCI config file ("":
// DEFAULT).
func LoadSigner(configPath, profile string) (*Signer, error) {
	p, err := ReadConfig(configPath, profile)
	if err != nil {
		return nil, err
	}
	pemBytes, err := os.ReadFile(p.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	key, err := ParsePrivateKeyPEM(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.KeyFile, err)
	}
	return &Signer{KeyID: p.Tenancy + "/" + p.User + "/" + p.Fingerprint, Key: key}, nil
}

// ConfigProvider returns an oci-go-sdk configuration provider reading a
// profile ("": DEFAULT) of an OCI config file, such as the one Bootstrap
// writes at ConfigPath(dataDir).
func ConfigProvider(configPath, profile string) (common.ConfigurationProvider, error) {
	if _, err := ReadConfig(configPath, profile); err != nil {
		return nil, err
	}
	if profile == "" || profile == "DEFAULT" {
		return common.ConfigurationProviderFromFile(configPath, "")
	}
	return common.ConfigurationProviderFromFileWithProfile(configPath, profile, "")
}
