#!/usr/bin/env bash
# test.sh runs the whole test suite with the race detector: the root module,
# then the nested adaptor/milvus module when it exists. Extra arguments go to
# `go test` (e.g. -run Foo). The servers the tests need come from
# internal/testenv, which uses the binaries `make tools` builds.
#
# The terminal shows `go test -v` output without the === RUN/PAUSE/CONT/NAME
# lines and the PASS lines of subtests (VERBOSE=1 shows everything); the
# full output of each module is kept in .run/test-<module>.log. A summary at
# the end names the servers used and lists skipped and failed tests.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
GO=${GO:-go}
TIMEOUT=${TEST_TIMEOUT:-30m}
LOG_DIR=${WOODPECKER_TEST_LOG_DIR:-$ROOT/.run}
mkdir -p "$LOG_DIR"

filter() {
	if [[ "${VERBOSE:-0}" == 1 ]]; then
		cat
	else
		grep --line-buffered -vE '^=== (RUN|PAUSE|CONT|NAME)|^ +--- PASS' || true
	fi
}

modules=(.)
if [[ -f adaptor/milvus/go.mod ]]; then
	modules+=(adaptor/milvus)
fi

status=0
logs=()
start=$SECONDS
for mod in "${modules[@]}"; do
	name=${mod//\//-}
	[[ "$name" == . ]] && name=root
	log="$LOG_DIR/test-$name.log"
	logs+=("$log")
	echo "== go test -race ./... in $mod (full output: ${log#"$ROOT"/})"
	set +e
	# The Milvus module's tests use Milvus's test framework, which builds
	# only with its "test" tag.
	tags=()
	[[ "$mod" == adaptor/milvus ]] && tags=(-tags test)
	(cd "$mod" && "$GO" test -race -count=1 -timeout "$TIMEOUT" -v "${tags[@]}" "$@" ./...) 2>&1 | tee "$log" | filter
	rc=${PIPESTATUS[0]}
	set -e
	if [[ $rc -ne 0 ]]; then
		status=$rc
	fi
done

count() { cat "${logs[@]}" | grep -cE "$1" || true; }

echo
echo "== summary ($((SECONDS - start))s)"
echo "servers used (number of test binaries that used each):"
servers=$(cat "${logs[@]}" | sed -nE 's/^testenv: (external S3|external etcd|MinIO [^ ]+|versitygw [^ ]+|etcd [^ ]+ \(embedded\)).*/\1/p' | sort | uniq -c)
echo "${servers:-      none}"
echo "tests: $(count '^ *--- PASS') passed, $(count '^ *--- FAIL') failed, $(count '^ *--- SKIP') skipped"
if grep -qE '^ *--- SKIP' "${logs[@]}"; then
	echo "skipped (reasons in the full output):"
	grep -hE '^ *--- SKIP' "${logs[@]}" | sed 's/^ */  /'
fi
if [[ $status -ne 0 ]]; then
	echo "FAILED:"
	grep -hE '^ *--- FAIL|^FAIL|^panic:' "${logs[@]}" | sed 's/^ */  /' || true
fi
exit $status
