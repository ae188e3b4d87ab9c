package milvus

import (
	"testing"

	"github.com/milvus-io/milvus/pkg/v2/util/paramtable"

	"github.com/woodpecker-wal/woodpecker/internal/testenv"
)

func TestMain(m *testing.M) {
	paramtable.Init()
	testenv.Main(m)
}
