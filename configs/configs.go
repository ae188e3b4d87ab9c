// Package configs holds Woodpecker's default configuration file, documented key by key.
//
// The file is embedded so that binaries and tests see exactly the text that ships in
// the repository. Package options parses it; a test there proves that the defaults
// in code (options.Default) equal the values in this file, and that every option
// in code appears in it.
package configs

import _ "embed"

// DefaultYAML is the text of configs/woodpecker.yaml, the documented default
// configuration. It is shared by every caller: treat it as read-only and copy it
// before changing it.
//
//go:embed woodpecker.yaml
var DefaultYAML []byte
