package options

import (
	"strings"
	"testing"
)

// TestValidationNeverEchoesEndpointPasswords: a password written into an
// endpoint URL (http://user:SECRET@host:2379) is redacted in every
// validation message, as Redacted hides secrets, and the message says
// where credentials go instead.
func TestValidationNeverEchoesEndpointPasswords(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(c *Config)
		key    string
		shown  string
	}{
		{"etcd http", func(c *Config) { c.Etcd.Endpoints = []string{"http://user:SECRET@host:2379"} },
			"etcd.endpoints[0]", `"http://user:<redacted>@host:2379" holds credentials; give them as etcd.username and etcd.password`},
		{"etcd without scheme", func(c *Config) { c.Etcd.Endpoints = []string{"a:1", "user:SECRET@host:2379"} },
			"etcd.endpoints[1]", `"user:<redacted>@host:2379" holds credentials`},
		{"etcd unknown scheme", func(c *Config) { c.Etcd.Endpoints = []string{"grpc://user:SECRET@host:2379"} },
			"etcd.endpoints[0]", `"grpc://user:<redacted>@host:2379" has an unknown scheme`},
		{"etcd https without tls", func(c *Config) { c.Etcd.Endpoints = []string{"https://user:SECRET@host:2379"} },
			"etcd.endpoints[0]", `"https://user:<redacted>@host:2379"`},
		{"storage with scheme", func(c *Config) { c.Storage.Endpoint = "http://ak:SECRET@minio:9000" },
			"storage.endpoint", `"http://ak:<redacted>@minio:9000" holds credentials; give them as storage.accessKey and storage.secretKey`},
		{"storage without scheme", func(c *Config) { c.Storage.Endpoint = "ak:SECRET@minio:9000" },
			"storage.endpoint", `"ak:<redacted>@minio:9000" holds credentials`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(&c)
			err := c.Validate()
			requireProblems(t, err, tc.key)
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("the message shows the password: %v", err)
			}
			if !strings.Contains(err.Error(), tc.shown) {
				t.Errorf("message %q does not say %q", err, tc.shown)
			}
			for _, shown := range []string{c.String(), string(c.Redacted().Render(true))} {
				if strings.Contains(shown, "SECRET") {
					t.Errorf("the printed configuration shows the password:\n%s", shown)
				}
			}
		})
	}
	for ep, want := range map[string]string{
		"host:2379":                    "host:2379",
		"http://user@host:2379":        "http://user@host:2379",
		"http://u:p@h:1/x@y":           "http://u:<redacted>@h:1/x@y",
		"unix:///run/etcd.sock":        "unix:///run/etcd.sock",
		"https://a:b:c@host:2379/path": "https://a:<redacted>@host:2379/path",
	} {
		if got := RedactEndpoint(ep); got != want {
			t.Errorf("RedactEndpoint(%q) = %q, want %q", ep, got, want)
		}
	}
}
