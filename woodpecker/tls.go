package woodpecker

import (
	"crypto/tls"
	"crypto/x509"
	"os"

	"github.com/cockroachdb/errors"
)

// buildTLS makes a client TLS configuration from files named in the config.
func buildTLS(caFile, certFile, keyFile, serverName string, insecure bool) (*tls.Config, error) {
	tc := &tls.Config{ServerName: serverName, InsecureSkipVerify: insecure, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, errors.Wrapf(err, "read CA file %s", caFile)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.Newf("CA file %s holds no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, errors.Wrapf(err, "load client certificate %s / key %s", certFile, keyFile)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
