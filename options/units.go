package options

import (
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
)

// sizeUnits maps lower-cased unit names to their number of bytes.
var sizeUnits = map[string]int64{
	"b":   1,
	"kb":  1000,
	"mb":  1000 * 1000,
	"gb":  1000 * 1000 * 1000,
	"tb":  1000 * 1000 * 1000 * 1000,
	"kib": KiB,
	"mib": MiB,
	"gib": GiB,
	"tib": TiB,
}

// sizeHint is appended to size parse errors.
const sizeHint = "write a number of bytes, or a number with a unit: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB"

var sizeNumber = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]+)?$`)

// ParseSize parses a size: a plain integer of bytes ("4194304") or a number and a
// unit ("4MiB", "64MB", "1.5 GiB"). Units are B, KB, MB, GB, TB (powers of 1000)
// and KiB, MiB, GiB, TiB (powers of 1024), in any letter case. A fractional
// number is allowed when the result is a whole number of bytes. Negative sizes
// parse (validation rejects them where they are not allowed). The error says what
// is accepted.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') })
	num, unit := t, ""
	if i >= 0 {
		num, unit = strings.TrimSpace(t[:i]), t[i:]
	}
	if !sizeNumber.MatchString(num) {
		return 0, errors.Newf("%q is not a size (%s)", s, sizeHint)
	}
	mult := int64(1)
	if unit != "" {
		m, ok := sizeUnits[strings.ToLower(unit)]
		if !ok {
			return 0, errors.Newf("%q is not a size: unknown unit %q (%s)", s, unit, sizeHint)
		}
		mult = m
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, errors.Newf("%q is not a size (%s)", s, sizeHint)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, errors.Newf("%q is not a whole number of bytes", s)
	}
	if !r.Num().IsInt64() {
		return 0, errors.Newf("%q is too large for a size (at most %d bytes)", s, int64(math.MaxInt64))
	}
	return r.Num().Int64(), nil
}

// formatUnits are tried by FormatSize, largest first within each family.
var formatUnits = []struct {
	name string
	size int64
}{
	{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB},
	{"TB", 1000 * 1000 * 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"MB", 1000 * 1000}, {"KB", 1000},
}

// FormatSize returns the shortest exact form of n that ParseSize reads back:
// "4MiB" for 4194304, "64MB" for 64000000, "1500" for 1500 (no unit divides it).
// A unit wins a tie with the plain number, and binary units win ties with
// decimal ones.
func FormatSize(n int64) string {
	best := strconv.FormatInt(n, 10)
	if n == 0 {
		return best
	}
	bestLen := len(best) + 1 // a unit wins a tie with the plain number
	for _, u := range formatUnits {
		if n%u.size != 0 {
			continue
		}
		if s := strconv.FormatInt(n/u.size, 10) + u.name; len(s) < bestLen {
			best, bestLen = s, len(s)
		}
	}
	return best
}

const durationHint = `write a number and a unit: ns, us, ms, s, m, h, d, for example "2ms", "30s", "10m", "72h", "1d12h"`

var daysPrefix = regexp.MustCompile(`^([+-]?)([0-9]+)d(.*)$`)

// ParseDuration parses a duration as time.ParseDuration does ("2ms", "1h30m"),
// plus a leading whole number of days ("7d", "1d12h"; a day is 24h), and "0"
// without a unit. Other plain numbers are rejected: a duration needs a unit.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "0" || t == "+0" || t == "-0" {
		return 0, nil
	}
	if m := daysPrefix.FindStringSubmatch(t); m != nil {
		days, err := strconv.ParseInt(m[2], 10, 64)
		if err != nil || days > int64(math.MaxInt64/(24*time.Hour)) {
			return 0, errors.Newf("%q is too long for a duration", s)
		}
		d := time.Duration(days) * 24 * time.Hour
		if rest := m[3]; rest != "" {
			if rest[0] == '+' || rest[0] == '-' {
				return 0, errors.Newf("%q is not a duration (%s)", s, durationHint)
			}
			r, err := time.ParseDuration(rest)
			if err != nil {
				return 0, errors.Newf("%q is not a duration (%s)", s, durationHint)
			}
			if r > math.MaxInt64-d {
				return 0, errors.Newf("%q is too long for a duration", s)
			}
			d += r
		}
		if m[1] == "-" {
			d = -d
		}
		return d, nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, errors.Newf("%q is not a duration (%s)", s, durationHint)
	}
	return d, nil
}

// FormatDuration returns d in a short form that ParseDuration reads back: "2ms",
// "10m", "72h", "1h30m" (time.Duration.String without trailing zero units).
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
