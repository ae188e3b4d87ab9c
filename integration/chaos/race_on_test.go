//go:build race

package chaos

// raceEnabled: the test binary runs with the race detector, and so do the
// child processes and the LogStores (built with -race, which also reuses
// the race-built packages of the test).
const raceEnabled = true
