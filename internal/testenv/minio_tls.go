package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
)

// StartMinIOTLS is StartMinIO for a server that serves https with a
// self-signed certificate made for this test (ECDSA P-256, valid for
// 127.0.0.1 and localhost). No system trusts it: clients verify it with
// the CA file CAFile names. S3().Secure is true.
func StartMinIOTLS(t testing.TB) *MinIOProcess {
	t.Helper()
	certsDir := t.TempDir()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := writeSelfSignedCert(certsDir, caFile); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	b := minioBinary
	b.launch = func(bin, dir string) (*process, string, error) { return launchMinIOCerts(bin, dir, certsDir) }
	d := startDedicated(t, b)
	s := localS3("minio", d.addr)
	s.Secure = true
	return &MinIOProcess{dedicatedServer: d, s3: s, caFile: caFile}
}

// CAFile returns the path of a PEM file holding the CA certificate that
// verifies a server StartMinIOTLS started; "" for a server without TLS.
func (m *MinIOProcess) CAFile() string { return m.caFile }

// writeSelfSignedCert writes a self-signed certificate for 127.0.0.1 and
// localhost and its key to certsDir as public.crt and private.key (MinIO's
// --certs-dir layout), and the certificate, which is its own CA, to
// caFile.
func writeSelfSignedCert(certsDir, caFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return errors.Wrap(err, "generate a TLS key")
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return errors.Wrap(err, "generate a serial number")
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "woodpecker testenv CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return errors.Wrap(err, "create a TLS certificate")
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return errors.Wrap(err, "encode the TLS key")
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	for path, data := range map[string][]byte{
		filepath.Join(certsDir, "public.crt"):  certPEM,
		filepath.Join(certsDir, "private.key"): keyPEM,
		caFile:                                 certPEM,
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return errors.Wrap(err, "write TLS files")
		}
	}
	return nil
}

// tlsProbeClient probes servers that serve https with a certificate of a
// test's own CA. Readiness is all it checks, so it does not verify the
// certificate. No keep-alive, as for probeClient.
var tlsProbeClient = &http.Client{
	Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // a readiness probe
	},
	Timeout: 2 * time.Second,
}

// minioReadyTLS is minioReady over https.
func minioReadyTLS(addr string) func(context.Context) error {
	url := "https://" + addr + "/minio/health/ready"
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := tlsProbeClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		if resp.StatusCode != http.StatusOK {
			return errors.Newf("%s answered %d", url, resp.StatusCode)
		}
		return nil
	}
}
