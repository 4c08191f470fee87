package benchutil

import "testing"

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{9, 2, 7, 4, 8}, 7},
	} {
		if got := Median(c.xs); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.xs, got, c.want)
		}
	}
}

func TestMedianLeavesItsInputAlone(t *testing.T) {
	xs := []float64{3, 1, 2}
	Median(xs)
	if xs[0] != 3 || xs[1] != 1 || xs[2] != 2 {
		t.Errorf("Median sorted its input: %v", xs)
	}
}

func TestCommas(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{999, "999"},
		{999.6, "1,000"},
		{1000, "1,000"},
		{123456, "123,456"},
		{1234567.4, "1,234,567"},
		{-123, "-123"},
		{-1234, "-1,234"},
		{-0.4, "0"},
	} {
		if got := Commas(c.in); got != c.want {
			t.Errorf("Commas(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestKilo(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{999, "999"},
		{1000, "1.0k"},
		{1540, "1.5k"},
		{99949, "99.9k"},
		{100000, "100k"},
		{150400, "150k"},
		{999400, "999k"},
		{1000000, "1.00M"},
		{1334000, "1.33M"},
		{12500000, "12.50M"},
	} {
		if got := Kilo(c.in); got != c.want {
			t.Errorf("Kilo(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}
