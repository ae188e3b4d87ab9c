package gc_test

import (
	"testing"

	"github.com/woodpecker-wal/woodpecker/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
