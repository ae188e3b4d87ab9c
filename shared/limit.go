package shared

import "time"

// adaptiveLimit is how many objects a stream keeps in flight, between 1
// and max, adapted to the store's latency in the manner of TCP Vegas: the
// fastest recent upload is the store's unloaded latency (base); when the
// smoothed latency of uploads rises well above it, requests are queueing
// in the store and one more in flight only adds delay, so the limit goes
// down by one; when it is close to base, there is room, and it goes up by
// one. Latency is per byte of the object, so that a batch of many logs is
// not mistaken for a slow store. Pure: the stream feeds it.
type adaptiveLimit struct {
	max, cur int
	base     float64 // fastest recent seconds per byte, drifting up slowly
	smooth   float64 // smoothed seconds per byte
}

func newAdaptiveLimit(max int) *adaptiveLimit {
	return &adaptiveLimit{max: max, cur: max}
}

// Thresholds of the ratio of smoothed to base latency.
const (
	limitDownAbove = 2.0
	limitUpBelow   = 1.3
	// Each sample lets base rise by 1/64, so that it follows a store that
	// became slower for good instead of throttling for ever.
	baseDrift = 1.0 / 64
	// Weight of a new sample in the smoothed latency.
	smoothWeight = 0.25
)

// observe records one upload of size bytes that took d, and returns the
// new limit.
func (l *adaptiveLimit) observe(d time.Duration, size int64) int {
	// Objects below 64 KiB cost about one request whatever their size.
	per := d.Seconds() / float64(max(size, 64<<10))
	if l.base == 0 || per < l.base {
		l.base = per
	} else {
		l.base += l.base * baseDrift
	}
	if l.smooth == 0 {
		l.smooth = per
	} else {
		l.smooth += smoothWeight * (per - l.smooth)
	}
	switch ratio := l.smooth / l.base; {
	case ratio > limitDownAbove && l.cur > 1:
		l.cur--
	case ratio < limitUpBelow && l.cur < l.max:
		l.cur++
	}
	return l.cur
}
