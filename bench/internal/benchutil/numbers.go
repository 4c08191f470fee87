package benchutil

import (
	"fmt"
	"slices"
)

// Median of xs (the mean of the middle two for an even count); 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// Commas is x rounded to a whole number, its thousands separated by
// commas: 1234567.4 is "1,234,567".
func Commas(x float64) string {
	neg := x < 0
	if neg {
		x = -x
	}
	s := fmt.Sprintf("%.0f", x)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg && s != "0" {
		return "-" + string(out)
	}
	return string(out)
}

// Kilo is x shortened for a chart's label or a table's range: 1.5k, 150k,
// 1.33M. Millions keep two decimals, so that pipelined requests per
// second (1.33M–1.41M) still tell their rounds apart.
func Kilo(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e5:
		return fmt.Sprintf("%.0fk", x/1e3)
	case x >= 1e3:
		return fmt.Sprintf("%.1fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}
