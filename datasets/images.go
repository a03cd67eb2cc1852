package datasets

import "fmt"

// Prototype sets for image teachers: a Teacher whose means are images and
// whose modes are those images plus Gaussian pixel noise. With well separated
// prototypes its entropy and its mass per prototype are known in closed
// form, which makes it a test of the whole image pipeline that needs no
// download (see configs/images-demo.yaml).

// PrototypeSets lists the names Prototypes accepts.
var PrototypeSets = []string{"strokes"}

// MaxPrototypeSide bounds the side of a prototype image.
const MaxPrototypeSide = 256

// Prototypes returns the prototype images of the named set, each channels×h×w
// values in (channel, row, column) order in [−1, 1] (background −1, strokes
// +1; every channel holds the same picture).
//
// "strokes" has four: a horizontal bar, a vertical bar, a diagonal and a
// square ring, each two pixels thick for sides ≥ 8 (one below), centred.
// Any two differ in at least h+w−2 pixels, so with pixel noise σ the modes
// are at least 2·√(h+w−2)/σ standard deviations apart.
func Prototypes(name string, channels, h, w int) ([][]float64, error) {
	if channels < 1 || h < 6 || w < 6 || h > MaxPrototypeSide || w > MaxPrototypeSide || channels > 16 {
		return nil, fmt.Errorf("datasets: prototype images need 1..16 channels and sides in 6..%d, got %d×%d×%d", MaxPrototypeSide, channels, h, w)
	}
	switch name {
	case "strokes":
	default:
		return nil, fmt.Errorf("datasets: unknown prototype set %q (have %v)", name, PrototypeSets)
	}
	t := 1
	if h >= 8 && w >= 8 {
		t = 2
	}
	draw := func(on func(r, c int) bool) []float64 {
		img := make([]float64, channels*h*w)
		for ch := 0; ch < channels; ch++ {
			for r := 0; r < h; r++ {
				for c := 0; c < w; c++ {
					v := -1.0
					if on(r, c) {
						v = 1
					}
					img[(ch*h+r)*w+c] = v
				}
			}
		}
		return img
	}
	r0, c0 := (h-t)/2, (w-t)/2
	within := func(v, lo int) bool { return v >= lo && v < lo+t }
	m := min(h, w)
	return [][]float64{
		draw(func(r, c int) bool { return within(r, r0) }),
		draw(func(r, c int) bool { return within(c, c0) }),
		draw(func(r, c int) bool { d := r*m/h - c*m/w; return d >= 0 && d < t }),
		draw(func(r, c int) bool {
			in := r >= 1 && r < h-1 && c >= 1 && c < w-1
			inner := r >= 1+t && r < h-1-t && c >= 1+t && c < w-1-t
			return in && !inner
		}),
	}, nil
}
