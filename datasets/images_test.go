package datasets

import (
	"testing"
)

func TestPrototypes(t *testing.T) {
	for _, c := range []struct{ ch, h, w int }{{1, 8, 8}, {1, 12, 12}, {3, 6, 9}, {1, 6, 6}} {
		p, err := Prototypes("strokes", c.ch, c.h, c.w)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != 4 {
			t.Fatalf("%v: %d prototypes", c, len(p))
		}
		for i := range p {
			if len(p[i]) != c.ch*c.h*c.w {
				t.Fatalf("%v: prototype %d has %d values", c, i, len(p[i]))
			}
			on := 0
			for _, v := range p[i] {
				if v != -1 && v != 1 {
					t.Fatalf("%v: value %v", c, v)
				}
				if v == 1 {
					on++
				}
			}
			if on == 0 || on == len(p[i]) {
				t.Errorf("%v: prototype %d is blank", c, i)
			}
			for j := 0; j < i; j++ {
				differ := 0
				for k := range p[i] {
					if p[i][k] != p[j][k] {
						differ++
					}
				}
				// the documented separation: at least h+w−2 pixels per channel
				if differ < c.ch*(c.h+c.w-2) {
					t.Errorf("%v: prototypes %d and %d differ in %d values, want ≥ %d", c, i, j, differ, c.ch*(c.h+c.w-2))
				}
			}
		}
	}
	for _, bad := range []struct {
		name     string
		ch, h, w int
	}{{"strokes", 0, 8, 8}, {"strokes", 1, 5, 8}, {"strokes", 1, 8, 1 << 20}, {"digits", 1, 8, 8}} {
		if _, err := Prototypes(bad.name, bad.ch, bad.h, bad.w); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
