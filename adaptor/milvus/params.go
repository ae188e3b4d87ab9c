package milvus

import (
	"net"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
	"github.com/milvus-io/milvus/pkg/v2/util/etcd"
	"github.com/milvus-io/milvus/pkg/v2/util/paramtable"

	"github.com/woodpecker-wal/woodpecker/adaptor"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/walimpls"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// KeySuffix is appended to Milvus's etcd.rootPath and minio.rootPath (and
// to localStorage.path) to keep this backend's data apart from everything
// else Milvus stores there, including what Milvus's own Woodpecker backend
// wrote under ".../wp": the two backends' data formats differ, and
// switching backends does not migrate a channel's data.
const KeySuffix = "wpwal"

// NewParamsBuilder returns the builder this package registers: each Build
// reads Milvus's parameters (paramtable.Get(), which Milvus initialises at
// start-up), converts them with ConfigFromParams, and connects to etcd the
// way Milvus does (embedded etcd, authentication and TLS included).
func NewParamsBuilder() *Builder {
	return &Builder{core: func() (walimpls.OpenerBuilder, func(), error) {
		p := paramtable.Get()
		cfg, err := ConfigFromParams(p)
		if err != nil {
			return nil, nil, err
		}
		e := &p.EtcdCfg
		cli, err := etcd.CreateEtcdClient(
			e.UseEmbedEtcd.GetAsBool(), e.EtcdEnableAuth.GetAsBool(), e.EtcdAuthUserName.GetValue(), e.EtcdAuthPassword.GetValue(),
			e.EtcdUseSSL.GetAsBool(), e.Endpoints.GetAsStrings(),
			e.EtcdTLSCert.GetValue(), e.EtcdTLSKey.GetValue(), e.EtcdTLSCACert.GetValue(), e.EtcdTLSMinVersion.GetValue(),
			e.ClientOptions()...)
		if err != nil {
			return nil, nil, errors.Wrap(err, "woodpecker wal: connect to etcd with Milvus's etcd.* settings")
		}
		return adaptor.NewBuilder(cfg, woodpecker.WithEtcdClient(cli)), func() { _ = cli.Close() }, nil
	}}
}

// ConfigFromParams converts Milvus's parameters to a validated Woodpecker
// configuration; everything not listed keeps the defaults of
// configs/woodpecker.yaml:
//
//	etcd.rootPath       <- etcd.rootPath + "/" + KeySuffix
//	etcd.endpoints      <- etcd.endpoints (for validation: the client is
//	                       built by Milvus's own etcd helper)
//	storage.type        <- woodpecker.storage.type: minio or local
//	mode                <- quorumBuffer when woodpecker.storage.type is
//	                       "service" (LogStore servers, found in the etcd
//	                       registry under etcd.rootPath); storage as for minio
//	for minio and service:
//	  storage.endpoint  <- minio.address and minio.port
//	  storage.bucket    <- minio.bucketName (created if missing)
//	  storage.rootPath  <- minio.rootPath + "/" + KeySuffix
//	  storage.accessKey, secretKey, useSSL, region, tls.caFile
//	                    <- minio.accessKeyID, secretAccessKey, useSSL, region,
//	                       ssl.tlsCACert (minio.useIAM is not supported)
//	for local:
//	  storage.rootPath  <- woodpecker.storage.rootPath, or
//	                       localStorage.path + "/" + KeySuffix when it is "default"
//
// Milvus's woodpecker.client.* and woodpecker.logstore.* tuning belongs to
// Milvus's own backend and is ignored.
func ConfigFromParams(p *paramtable.ComponentParam) (options.Config, error) {
	cfg := options.Default()
	cfg.Etcd.Endpoints = p.EtcdCfg.Endpoints.GetAsStrings()
	cfg.Etcd.RootPath = joinPrefix(p.EtcdCfg.RootPath.GetValue(), KeySuffix)
	switch st := p.WoodpeckerCfg.StorageType.GetValue(); st {
	case "minio", "service":
		// "service" is Milvus's name for Woodpecker served by LogStore
		// servers: QuorumBuffer, uploading to the same MinIO.
		if st == "service" {
			cfg.Mode = options.ModeQuorumBuffer
		}
		m := &p.MinioCfg
		if m.UseIAM.GetAsBool() {
			return options.Config{}, walerr.Mark(errors.New(
				"woodpecker wal: minio.useIAM is not supported by this backend; set minio.accessKeyID and minio.secretAccessKey"),
				options.ErrInvalidConfig)
		}
		host := m.Address.GetValue()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		cfg.Storage.Type = options.StorageMinIO
		cfg.Storage.Endpoint = net.JoinHostPort(host, strconv.Itoa(m.Port.GetAsInt()))
		cfg.Storage.Bucket = m.BucketName.GetValue()
		cfg.Storage.RootPath = joinPrefix(m.RootPath.GetValue(), KeySuffix)
		cfg.Storage.AccessKey = m.AccessKeyID.GetValue()
		cfg.Storage.SecretKey = m.SecretAccessKey.GetValue()
		cfg.Storage.UseSSL = m.UseSSL.GetAsBool()
		cfg.Storage.Region = m.Region.GetValue()
		if cfg.Storage.UseSSL {
			cfg.Storage.TLS.CAFile = m.SslCACert.GetValue()
		}
		cfg.Storage.CreateBucket = true
	case "local":
		cfg.Storage.Type = options.StorageLocal
		cfg.Storage.RootPath = p.WoodpeckerCfg.RootPath.GetValue()
		if cfg.Storage.RootPath == "default" {
			cfg.Storage.RootPath = strings.TrimRight(p.LocalStorageCfg.Path.GetValue(), "/") + "/" + KeySuffix
		}
	default:
		return options.Config{}, walerr.Mark(errors.Newf(
			"woodpecker wal: woodpecker.storage.type %q is not supported by this backend (use minio, service or local)", st),
			options.ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return options.Config{}, errors.Wrap(err, "woodpecker wal: configuration derived from Milvus's parameters")
	}
	return cfg, nil
}

// joinPrefix joins key prefixes, dropping surrounding slashes.
func joinPrefix(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.Trim(p, "/"); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "/")
}
