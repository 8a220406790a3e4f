package mdcheck

import (
	"strings"
	"testing"
)

func TestProblemsFindsWhatDataDidToASummary(t *testing.T) {
	good := "## Scan\n\n| A | B |\n|---|---|\n| `a\\|b` | x \\| y |\n\n```sh\n| not | a | table\n<img>\n```\n"
	if p := Problems(good, "::"); len(p) != 0 {
		t.Fatalf("a clean summary has problems: %q", p)
	}
	for name, md := range map[string]string{
		"split cell":   "| A | B |\n|---|---|\n| a | b | c |\n",
		"raw HTML":     "text <img src=x onerror=alert(1)>\n",
		"line started": "x\n::error::pwned\n",
		"open fence":   "```\ncode\n",
	} {
		if p := Problems(md, "::"); len(p) == 0 {
			t.Errorf("%s: no problem found in %q", name, md)
		} else if strings.Contains(p[0], "\n") {
			t.Errorf("%s: a problem spans lines: %q", name, p[0])
		}
	}
}
