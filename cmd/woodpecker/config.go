package main

import (
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/options"
)

// sourceEmbedded is the Sources value of the keys the embedded default
// sets.
const sourceEmbedded = "embedded default (--data-dir)"

// resolved is the configuration a command runs with.
type resolved struct {
	cfg options.Config
	// embedded is true when neither etcd nor storage is configured: the
	// command runs an embedded etcd in dataDir/etcd and keeps log data in
	// dataDir/logs. cfg.Etcd.Endpoints is filled in once etcd runs.
	embedded bool
	dataDir  string
}

// etcdDir and logsDir are the embedded default's directories.
func (r resolved) etcdDir() string { return filepath.Join(r.dataDir, "etcd") }
func (r resolved) logsDir() string { return filepath.Join(r.dataDir, "logs") }

// loadConfig builds the configuration: the defaults, overlaid with the
// --config file, the WOODPECKER_* environment and the flags, in that order;
// then decides on the embedded default, and validates.
//
// The embedded default applies when no key of the etcd or storage
// sections was set by a file, the environment or a flag: that is, exactly
// when nothing says where etcd or the data are. Setting any of them (a
// MinIO endpoint alone, say) means the configured servers are used, with
// the documented defaults for the keys left out (etcd at localhost:2379),
// so that a half-written configuration never splits a log's metadata
// between a real etcd and an embedded one.
func (a *app) loadConfig() (resolved, error) {
	if a.g.flags.Changed("data-dir") && strings.TrimSpace(a.g.dataDir) == "" {
		// Not the current directory: that would scatter etcd/ and logs/
		// wherever the command happens to run.
		return resolved{}, usagef("--data-dir is empty: name the directory of the embedded default (default %q)", a.g.flags.Lookup("data-dir").DefValue)
	}
	cfg := options.Default()
	if a.g.configPath != "" {
		if st, err := os.Stat(a.g.configPath); err == nil && st.IsDir() {
			return resolved{}, usagef("configuration file %s is a directory: name a YAML file such as configs/woodpecker.yaml", a.g.configPath)
		}
		var err error
		if cfg, err = options.Load(a.g.configPath); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return resolved{}, usagef("configuration file %s does not exist", a.g.configPath)
			}
			return resolved{}, err
		}
	}
	if err := cfg.ApplyEnv(a.lookup); err != nil {
		return resolved{}, err
	}
	if err := a.applyFlags(&cfg); err != nil {
		return resolved{}, err
	}
	r := resolved{cfg: cfg, dataDir: a.g.dataDir}
	r.embedded = true
	for key, src := range cfg.Sources {
		if (strings.HasPrefix(key, "etcd.") || strings.HasPrefix(key, "storage.")) && src != options.SourceDefault {
			r.embedded = false
			break
		}
	}
	if r.embedded {
		r.cfg.Storage.Type = options.StorageLocal
		r.cfg.Storage.RootPath = r.logsDir()
		sources := maps.Clone(r.cfg.Sources)
		sources["storage.type"] = sourceEmbedded
		sources["storage.rootPath"] = sourceEmbedded
		sources["etcd.endpoints"] = sourceEmbedded
		r.cfg.Sources = sources
	}
	if err := r.cfg.Validate(); err != nil {
		return resolved{}, err
	}
	return r, nil
}

// applyFlags overrides keys with the global flags the user set, recording
// "flag:--name" as their source.
func (a *app) applyFlags(cfg *options.Config) error {
	f := a.g.flags
	set := map[string]string{}
	str := func(flag, key string, dst *string, val string) {
		if f.Changed(flag) {
			*dst = val
			set[key] = "flag:--" + flag
		}
	}
	if f.Changed("etcd") {
		var eps []string
		for _, ep := range a.g.etcd {
			if ep = strings.TrimSpace(ep); ep != "" {
				eps = append(eps, ep)
			}
		}
		if len(eps) == 0 {
			return usagef("--etcd names no endpoint (want host:port, comma-separated)")
		}
		cfg.Etcd.Endpoints = eps
		set["etcd.endpoints"] = "flag:--etcd"
	}
	str("etcd-root", "etcd.rootPath", &cfg.Etcd.RootPath, a.g.etcdRoot)
	if f.Changed("storage") {
		cfg.Storage.Type = options.StorageType(a.g.storage)
		set["storage.type"] = "flag:--storage"
	}
	str("storage-endpoint", "storage.endpoint", &cfg.Storage.Endpoint, a.g.storageEndpoint)
	str("storage-bucket", "storage.bucket", &cfg.Storage.Bucket, a.g.storageBucket)
	str("storage-root", "storage.rootPath", &cfg.Storage.RootPath, a.g.storageRoot)
	if f.Changed("log-level") {
		cfg.Log.Level = options.LogLevel(a.g.logLevel)
		set["log.level"] = "flag:--log-level"
	}
	if f.Changed("log-format") {
		cfg.Log.Format = options.LogFormat(a.g.logFormat)
		set["log.format"] = "flag:--log-format"
	}
	str("metrics-addr", "metrics.addr", &cfg.Metrics.Addr, a.g.metricsAddr)
	if len(set) > 0 {
		sources := maps.Clone(cfg.Sources)
		if sources == nil {
			sources = map[string]string{}
		}
		maps.Copy(sources, set)
		cfg.Sources = sources
	}
	return nil
}
