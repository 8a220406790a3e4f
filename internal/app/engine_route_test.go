package app

import "testing"

func TestNeedsEngineRoutesOnlyScanningInvocations(t *testing.T) {
	cases := []struct {
		args   []string
		env    map[string]string
		action bool
		want   bool
	}{
		{args: []string{"push", "--images", "x"}, want: false},
		{args: []string{"scan", "--images", "x"}, want: true},
		{args: []string{"demo"}, want: true},
		{args: []string{"run", "--json", "push,sign"}, want: false},
		{args: []string{"run", "--json", "push,scan,sign"}, want: true},
		{args: []string{"version"}, want: false},
		{env: map[string]string{"INPUT_STAGE": "push, scan"}, action: true, want: true},
		{env: map[string]string{"INPUT_STAGE": "push,sign"}, action: true, want: false},
		{env: map[string]string{}, action: true, want: false},
		{env: map[string]string{"INPUT_STAGE": "scan,bogus"}, action: true, want: false},
	}
	for _, tc := range cases {
		env := tc.env
		pio := IO{Args: tc.args, Getenv: func(k string) string { return env[k] }}
		if got := needsEngine(pio, tc.action); got != tc.want {
			t.Errorf("needsEngine(%v, %v) = %v, want %v", tc.args, tc.env, got, tc.want)
		}
	}
}
