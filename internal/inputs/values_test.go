package inputs

import (
	"strconv"
	"strings"
	"testing"
)

// TestIntInputsNameTheirRange is the regression test for an overflowing
// number reported as "0 is out of range": the value the user typed and the
// input's range are named instead.
func TestIntInputsNameTheirRange(t *testing.T) {
	for _, in := range All() {
		if in.Kind != Int {
			continue
		}
		if in.Max <= in.Min {
			t.Errorf("input %s is an Int without a range (Min %d, Max %d)", in.Name, in.Min, in.Max)
			continue
		}
		for _, bad := range []string{"99999999999999999999", "-99999999999999999999", "12x", "1.5"} {
			v := NewValues(map[string]string{in.Name: bad})
			if _, ok := v.Int(in.Name); ok {
				t.Errorf("%s=%s accepted", in.Name, bad)
			}
			msg := v.Err().Error()
			if !strings.Contains(msg, bad) || !strings.Contains(msg, "from ") || strings.Contains(msg, " 0 is") {
				t.Errorf("%s=%s: %q should quote the value and name the range", in.Name, bad, msg)
			}
		}
		for _, edge := range []int{in.Min - 1, in.Max + 1} {
			v := NewValues(map[string]string{in.Name: strconv.Itoa(edge)})
			if _, ok := v.Int(in.Name); ok || !strings.Contains(v.Err().Error(), "out of range") {
				t.Errorf("%s=%d is outside its range and must be refused", in.Name, edge)
			}
		}
		for _, good := range []int{in.Min, in.Max} {
			v := NewValues(map[string]string{in.Name: strconv.Itoa(good)})
			if n, ok := v.Int(in.Name); !ok || n != good || v.Err() != nil {
				t.Errorf("%s=%d is inside its range: got %d %v %v", in.Name, good, n, ok, v.Err())
			}
		}
	}
}

// TestDurationsNeverOverflow: a number of days or weeks too large for a
// duration is refused, never wrapped into a negative or tiny one.
func TestDurationsNeverOverflow(t *testing.T) {
	for _, s := range []string{"2000000000d", "1000000w", "106752d1h", "99999999999999999999d", "9223372036854775807s"} {
		if d, err := ParseDuration(s); err == nil || !strings.Contains(err.Error(), "too large") {
			t.Errorf("%s: got %v, %v; want a too-large error", s, d, err)
		}
	}
	if d, err := ParseDuration("106751d"); err != nil || d <= 0 {
		t.Errorf("106751d fits in a duration: %v %v", d, err)
	}
}
