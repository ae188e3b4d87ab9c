package bench

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
)

// rss is the process's resident set: now, and the most it ever was.
type rss struct {
	current, peak uint64
}

// residentSet reads VmRSS and VmHWM from /proc/self/status (Linux); zero
// where that file does not exist.
func residentSet() rss {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return rss{}
	}
	var r rss
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 3 || string(f[2]) != "kB" {
			continue
		}
		kb, err := strconv.ParseUint(string(f[1]), 10, 64)
		if err != nil {
			continue
		}
		switch string(f[0]) {
		case "VmRSS:":
			r.current = kb << 10
		case "VmHWM:":
			r.peak = kb << 10
		}
	}
	return r
}
