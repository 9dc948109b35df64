package auth

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
)

// DefaultRegion is the region written to generated OCI config files. The
// SDKs need one; Gantry ignores it (clients override the endpoint).
const DefaultRegion = "us-chicago-1"

// Profile is one profile of an OCI config file.
type Profile struct {
	User        string
	Fingerprint string
	Tenancy     string
	Region      string
	KeyFile     string // absolute path of the PEM private key
}

// WriteConfig writes an OCI config file at path holding the profile
// DEFAULT, atomically (temporary file, fsync, rename), mode 0600. comment,
// when not empty, is written as "#" lines at the top.
func WriteConfig(path string, p Profile, comment string) error {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(comment), "\n") {
		if line != "" {
			fmt.Fprintf(&b, "# %s\n", line)
		}
	}
	region := p.Region
	if region == "" {
		region = DefaultRegion
	}
	fmt.Fprintf(&b, "[DEFAULT]\nuser=%s\nfingerprint=%s\ntenancy=%s\nregion=%s\nkey_file=%s\n",
		p.User, p.Fingerprint, p.Tenancy, region, p.KeyFile)
	return writeFileAtomic(path, []byte(b.String()), 0o600)
}

// ReadConfig reads the named profile ("" means DEFAULT) of an OCI config
// file. A relative or ~ key_file is resolved as the OCI SDKs do.
func ReadConfig(path, profile string) (Profile, error) {
	if profile == "" {
		profile = "DEFAULT"
	}
	f, err := os.Open(path)
	if err != nil {
		return Profile{}, fmt.Errorf("read OCI config: %w", err)
	}
	defer f.Close()
	sections := map[string]map[string]string{}
	cur := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			cur = strings.TrimSpace(line[1 : len(line)-1])
			if sections[cur] == nil {
				sections[cur] = map[string]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || cur == "" {
			return Profile{}, fmt.Errorf("%s:%d: expected key=value inside a [PROFILE] section", path, n)
		}
		sections[cur][strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return Profile{}, fmt.Errorf("read %s: %w", path, err)
	}
	sec, ok := sections[profile]
	if !ok {
		return Profile{}, fmt.Errorf("%s: no profile [%s]", path, profile)
	}
	// Missing keys fall back to DEFAULT, as in the OCI SDKs.
	get := func(k string) string {
		if v := sec[k]; v != "" {
			return v
		}
		return sections["DEFAULT"][k]
	}
	p := Profile{User: get("user"), Fingerprint: get("fingerprint"), Tenancy: get("tenancy"), Region: get("region"), KeyFile: get("key_file")}
	for k, v := range map[string]string{"user": p.User, "fingerprint": p.Fingerprint, "tenancy": p.Tenancy, "key_file": p.KeyFile} {
		if v == "" {
			return Profile{}, fmt.Errorf("%s: profile [%s] has no %s", path, profile, k)
		}
	}
	if strings.HasPrefix(p.KeyFile, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			p.KeyFile = filepath.Join(home, p.KeyFile[2:])
		}
	} else if !filepath.IsAbs(p.KeyFile) {
		p.KeyFile = filepath.Join(filepath.Dir(path), p.KeyFile)
	}
	return p, nil
}

// ConfigPath and KeyPath are where Bootstrap writes the OCI config and the
// private key of a data directory.
func ConfigPath(dataDir string) string { return filepath.Join(dataDir, "oci", "config") }

// KeyPath is the private key file Bootstrap writes in a data directory.
func KeyPath(dataDir string) string { return filepath.Join(dataDir, "oci", "key.pem") }

// BootstrapStore is what Bootstrap needs of a store: the tenancies, and a
// transaction in which to claim the first start and create its identities.
type BootstrapStore interface {
	ListTenancies(ctx context.Context) ([]*core.Tenancy, error)
	InTx(ctx context.Context, fn func(tx store.Tx) error) error
}

// Bootstrap prepares an empty deployment: when the store holds no tenancy,
// it creates one (with a fresh object storage namespace), a user and an RSA
// key pair, stores the public key, and writes DATA/oci/key.pem (mode 0600)
// and DATA/oci/config (profile DEFAULT with user, fingerprint, tenancy,
// region and the absolute key_file). With a tenancy present it does nothing.
// endpoint is recorded as a comment in the config file.
//
// Servers bootstrapping one database at once create one deployment: the
// tenancy, user and key are created in the transaction that claims the
// store's bootstrap (Identities.ClaimBootstrap), and the files are written
// by the claim's holder before it commits; the others wait for that
// commit, find the claim taken and do nothing, so that on return the
// files (on a shared data directory) and the store agree.
func Bootstrap(ctx context.Context, st BootstrapStore, dataDir, endpoint string) error {
	ts, err := st.ListTenancies(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap: list tenancies: %w", err)
	}
	if len(ts) > 0 {
		return nil
	}
	absData, err := filepath.Abs(dataDir)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	key, err := GenerateKey()
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	now := time.Now().UTC()
	ten := &core.Tenancy{ID: NewOCID("tenancy"), Name: "gantry", Namespace: NewNamespace(), TimeCreated: now}
	user := &core.User{ID: NewOCID("user"), TenancyID: ten.ID, Name: "admin", TimeCreated: now}
	apiKey, err := NewAPIKey(ten.ID, user.ID, &key.PublicKey, now)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return st.InTx(ctx, func(tx store.Tx) error {
		claimed, err := tx.ClaimBootstrap(ctx, ten.ID, now)
		if err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		if !claimed {
			return nil // another server bootstrapped this database
		}
		if err := tx.CreateTenancy(ctx, ten); err != nil {
			return fmt.Errorf("bootstrap: create tenancy: %w", err)
		}
		if err := tx.CreateUser(ctx, user); err != nil {
			return fmt.Errorf("bootstrap: create user: %w", err)
		}
		if err := tx.AddAPIKey(ctx, apiKey); err != nil {
			return fmt.Errorf("bootstrap: add API key: %w", err)
		}
		// Files last, before the commit: only the claim's holder writes
		// them, and a crash before the commit leaves an empty store, so
		// the next start writes them again.
		if err := os.MkdirAll(filepath.Join(absData, "oci"), 0o700); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		if err := writeFileAtomic(KeyPath(absData), EncodePrivateKeyPEM(key), 0o600); err != nil {
			return fmt.Errorf("bootstrap: write key: %w", err)
		}
		comment := "Written by gantry serve on first start.\nUse it with any OCI SDK or CLI by overriding the endpoint"
		if endpoint != "" {
			comment += ": " + endpoint
		}
		if err := WriteConfig(ConfigPath(absData), Profile{
			User: user.ID, Fingerprint: apiKey.Fingerprint, Tenancy: ten.ID, Region: DefaultRegion, KeyFile: KeyPath(absData),
		}, comment); err != nil {
			return fmt.Errorf("bootstrap: write config: %w", err)
		}
		return nil
	})
}

// NewAPIKey describes pub as an API key of a user, with its fingerprint
// and PEM encoding filled in.
func NewAPIKey(tenancyID, userID string, pub *rsa.PublicKey, now time.Time) (*core.APIKey, error) {
	fp, err := Fingerprint(pub)
	if err != nil {
		return nil, err
	}
	pemBytes, err := EncodePublicKeyPEM(pub)
	if err != nil {
		return nil, err
	}
	return &core.APIKey{TenancyID: tenancyID, UserID: userID, Fingerprint: fp, PublicKeyPEM: string(pemBytes), TimeCreated: now}, nil
}

// NewOCID makes a random OCID of a resource type, in OCI's shape
// "ocid1.<type>.oc1..<60 base32 characters>".
func NewOCID(resourceType string) string {
	return "ocid1." + resourceType + ".oc1..aaaaaaaa" + randomLower(52)
}

// NewNamespace makes a random object storage namespace (12 lower-case
// letters and digits, as OCI's look).
func NewNamespace() string { return randomLower(12) }

func randomLower(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	b := make([]byte, n)
	rand.Read(b) // never fails: crypto/rand crashes the program instead
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, synced and renamed over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
