#!/usr/bin/env bash
# tools.sh builds the servers and linters the tests use, once, into
# $WOODPECKER_TOOLS_DIR (default: <repo>/.tools), one folder per tool and
# version: .tools/<name>-<version>/<binary>. A tool whose binary is already
# there is skipped. Each binary is built into a temporary folder next to its
# final place and moved in only when complete, so an interrupted build is
# never mistaken for a finished one.
#
# Usage: scripts/tools.sh [minio] [versitygw] [etcd] [staticcheck]
#        (no argument: all of them)
#        scripts/tools.sh --path NAME   prints the binary's path (built or not)
#
# The versions here must match internal/testenv/tools.go (a test checks it).
set -euo pipefail

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
VERSITYGW_VERSION=v1.8.0
ETCD_VERSION=v3.6.16
STATICCHECK_VERSION=v0.8.2

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_DIR=${WOODPECKER_TOOLS_DIR:-$ROOT/.tools}

# tool_dir NAME prints the folder that holds NAME's binaries.
tool_dir() {
	case "$1" in
	minio) echo "$TOOLS_DIR/minio-$MINIO_VERSION" ;;
	versitygw) echo "$TOOLS_DIR/versitygw-$VERSITYGW_VERSION" ;;
	etcd) echo "$TOOLS_DIR/etcd-$ETCD_VERSION" ;;
	staticcheck) echo "$TOOLS_DIR/staticcheck-$STATICCHECK_VERSION" ;;
	*)
		echo "tools.sh: unknown tool '$1' (known: minio versitygw etcd staticcheck)" >&2
		return 2
		;;
	esac
}

# tool_bins NAME prints the binaries a complete install of NAME has.
tool_bins() {
	case "$1" in
	etcd) echo "etcd etcdctl" ;;
	*) echo "$1" ;;
	esac
}

installed() {
	local dir bin
	dir=$(tool_dir "$1")
	for bin in $(tool_bins "$1"); do
		[[ -x "$dir/$bin" ]] || return 1
	done
}

log() { echo "tools: $*" >&2; }

# Temporary folders of the build in progress, removed on any exit.
TMPDIRS=()
cleanup() {
	local d
	for d in "${TMPDIRS[@]+"${TMPDIRS[@]}"}"; do
		rm -rf "$d"
	done
}
trap cleanup EXIT

# new_tmp PARENT makes a temporary folder under PARENT (same file system as
# the final place, so mv is an atomic rename) and prints it.
new_tmp() {
	local d
	d=$(mktemp -d "$1/.tmp-build.XXXXXX")
	TMPDIRS+=("$d")
	echo "$d"
}

build_minio() {
	local dir=$1 tmp=$2
	CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath -ldflags='-s -w' \
		"github.com/minio/minio@$MINIO_VERSION"
	mv -f "$tmp/minio" "$dir/minio"
}

build_versitygw() {
	local dir=$1 tmp=$2
	CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath -ldflags='-s -w' \
		"github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
	mv -f "$tmp/versitygw" "$dir/versitygw"
}

build_staticcheck() {
	local dir=$1 tmp=$2
	GOBIN="$tmp" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
	mv -f "$tmp/staticcheck" "$dir/staticcheck"
}

# etcd's server module has replace directives, so `go install` refuses it;
# build it from a throwaway module that requires it instead.
build_etcd() {
	local dir=$1 tmp=$2
	(
		cd "$tmp"
		export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" GOWORK=off
		go mod init etcdbuild >/dev/null 2>&1
		go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION"
		CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tmp/etcd" go.etcd.io/etcd/server/v3
		CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tmp/etcdctl" go.etcd.io/etcd/etcdctl/v3
	)
	# etcdctl first: etcd is the binary whose presence marks the tool as
	# installed by testenv, so it lands last.
	mv -f "$tmp/etcdctl" "$dir/etcdctl"
	mv -f "$tmp/etcd" "$dir/etcd"
}

install_tool() {
	local name=$1 dir tmp start
	dir=$(tool_dir "$name")
	if installed "$name"; then
		log "$name: present in $dir"
		return 0
	fi
	mkdir -p "$dir"
	# One build per tool at a time on this machine; a second caller waits and
	# then finds the tool installed.
	exec {lockfd}>"$dir/.lock"
	if command -v flock >/dev/null 2>&1; then
		if ! flock -n "$lockfd"; then
			log "$name: another build is running, waiting for it"
			flock "$lockfd"
		fi
	fi
	if installed "$name"; then
		log "$name: present in $dir"
		exec {lockfd}>&-
		return 0
	fi
	log "$name: building into $dir (first time only; minutes)"
	start=$SECONDS
	tmp=$(new_tmp "$dir")
	"build_$name" "$dir" "$tmp"
	rm -rf "$tmp"
	log "$name: built in $((SECONDS - start))s"
	exec {lockfd}>&-
}

main() {
	if [[ "${1:-}" == "--path" ]]; then
		[[ $# -eq 2 ]] || { echo "usage: tools.sh --path NAME" >&2; exit 2; }
		local bins
		bins=$(tool_bins "$2")
		echo "$(tool_dir "$2")/${bins%% *}"
		return 0
	fi
	command -v go >/dev/null 2>&1 || { echo "tools.sh: go is not on PATH" >&2; exit 1; }
	local names=("$@")
	if [[ ${#names[@]} -eq 0 ]]; then
		names=(minio versitygw etcd staticcheck)
	fi
	local name
	for name in "${names[@]}"; do
		tool_dir "$name" >/dev/null
	done
	mkdir -p "$TOOLS_DIR"
	for name in "${names[@]}"; do
		install_tool "$name"
	done
}

main "$@"
