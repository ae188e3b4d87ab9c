//go:build !race

package chaos

// raceEnabled: see race_on_test.go.
const raceEnabled = false
