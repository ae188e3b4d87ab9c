package shared

import (
	"math/bits"
	"time"
)

// adaptiveLimit is how many objects a stream uploads at once, between 1
// and max, adapted to the store's latency in the manner of TCP Vegas: the
// fastest recent upload of objects of about the same size is the store's
// unloaded latency for them (base); when uploads take well above it,
// requests queue in the store and one more in flight only adds delay, so
// the limit goes down by one; close to it, there is room, and it goes up
// by one. Sizes are compared within classes (powers of two, everything up
// to 64 KiB one class), because a PUT's time is mostly a fixed cost: per
// byte, small objects would look slow. Pure: the stream feeds it.
type adaptiveLimit struct {
	max, cur int
	base     map[int]float64 // by size class: fastest recent seconds, drifting up slowly
	smooth   float64         // smoothed ratio of latency to its class's base
}

func newAdaptiveLimit(max int) *adaptiveLimit {
	return &adaptiveLimit{max: max, cur: max, base: map[int]float64{}, smooth: 1}
}

// Thresholds of the smoothed ratio of latency to base.
const (
	limitDownAbove = 2.0
	limitUpBelow   = 1.3
	// Each sample lets its class's base rise by 1/64, so that it follows a
	// store that became slower for good instead of throttling for ever.
	baseDrift = 1.0 / 64
	// Weight of a new sample in the smoothed ratio.
	smoothWeight = 0.25
)

// sizeClass groups object sizes whose PUTs cost about the same.
func sizeClass(size int64) int { return bits.Len64(uint64(max(size, 64<<10) - 1)) }

// observe records one upload of size bytes that took d, and returns the
// new limit.
func (l *adaptiveLimit) observe(d time.Duration, size int64) int {
	c, s := sizeClass(size), d.Seconds()
	b := l.base[c]
	if b == 0 || s < b {
		b = s
	} else {
		b += b * baseDrift
	}
	l.base[c] = b
	ratio := 1.0
	if b > 0 {
		ratio = s / b
	}
	l.smooth += smoothWeight * (ratio - l.smooth)
	switch {
	case l.smooth > limitDownAbove && l.cur > 1:
		l.cur--
	case l.smooth < limitUpBelow && l.cur < l.max:
		l.cur++
	}
	return l.cur
}
