package report

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMarkdownEscapesDataInTables(t *testing.T) {
	var md Markdown
	md.Table([]string{"Tag", "Note"}, [][]string{{Code("a|b`c"), Escape("<script> *x* [y](z)\nnext")}})
	out := md.String()
	if strings.Count(strings.Split(out, "\n")[2], " | ") != 1 {
		t.Fatalf("a pipe in data split the row:\n%s", out)
	}
	for _, bad := range []string{"<script>", "\nnext"} {
		if strings.Contains(out, bad) {
			t.Errorf("unescaped %q in:\n%s", bad, out)
		}
	}
}

func TestTruncateStaysWithinLimitAndClosesBlocks(t *testing.T) {
	var md Markdown
	md.Heading(2, "Scan")
	md.Details("all findings", func(b *Markdown) {
		var rows [][]string
		for i := 0; i < 50000; i++ {
			rows = append(rows, []string{Code("CVE-2024-0001"), "openssl", "3.0.1"})
		}
		b.Table([]string{"ID", "Package", "Installed"}, rows)
		b.CodeBlock("", strings.Repeat("line\n", 1000))
	})
	full := md.String()
	if len(full) <= StepSummaryLimit {
		t.Fatalf("fixture too small: %d", len(full))
	}
	cut := Truncate(full, StepSummaryLimit, "The full summary is in reports/summary.md.")
	if len(cut) > StepSummaryLimit {
		t.Fatalf("truncated summary is %d bytes, over %d", len(cut), StepSummaryLimit)
	}
	if strings.Count(cut, "<details>") != strings.Count(cut, "</details>") || !strings.Contains(cut, "reports/summary.md") {
		t.Fatalf("truncation left an open <details> or lost the note")
	}
	if Truncate("short", StepSummaryLimit, "x") != "short" {
		t.Fatal("a short summary must pass unchanged")
	}
}

func TestRedactorHidesSecretsSplitAcrossWrites(t *testing.T) {
	var red Redactor
	red.Add("s3cr3t-value")
	red.Add("ab") // too short to mask usefully
	var out bytes.Buffer
	w := red.Writer(&out)
	w.Write([]byte("token=s3cr"))
	w.Write([]byte("3t-value ab\ntail"))
	Flush(w)
	if strings.Contains(out.String(), "s3cr3t") || !strings.Contains(out.String(), "token=*** ab\ntail") {
		t.Fatalf("redacted output %q", out.String())
	}
}

func TestActionsSinkWritesOutputsSummaryAndMasks(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"GITHUB_OUTPUT": filepath.Join(dir, "out"), "GITHUB_STEP_SUMMARY": filepath.Join(dir, "sum")}
	var stdout bytes.Buffer
	red := &Redactor{}
	a := NewActions(&stdout, func(k string) string { return env[k] }, red)
	a.Mask("hunter2-password")
	a.Infof("logging in with hunter2-password")
	end := a.Group("push ghcr.io/acme/app")
	end()
	// A value holding the default delimiter cannot forge another output.
	if err := a.SetOutputs([]Output{{Name: "tags", Value: "a\nghadelimiter_registry\nevil=1"}, {Name: "digest", Value: "sha256:abc"}}); err != nil {
		t.Fatal(err)
	}
	var md Markdown
	md.Heading(2, "Push")
	a.AddSummary(&md)
	if err := a.FlushSummary(); err != nil {
		t.Fatal(err)
	}
	log := stdout.String()
	if !strings.Contains(log, "::add-mask::hunter2-password") || strings.Contains(strings.ReplaceAll(log, "::add-mask::hunter2-password", ""), "hunter2") {
		t.Fatalf("mask/redaction wrong:\n%s", log)
	}
	if !strings.Contains(log, "::group::push ghcr.io/acme/app") || !strings.Contains(log, "::endgroup::") {
		t.Fatalf("no group:\n%s", log)
	}
	out, _ := os.ReadFile(env["GITHUB_OUTPUT"])
	if !strings.Contains(string(out), "tags<<ghadelimiter_registry_0\n") || !strings.Contains(string(out), "digest<<") {
		t.Fatalf("outputs file:\n%s", out)
	}
	sum, _ := os.ReadFile(env["GITHUB_STEP_SUMMARY"])
	if string(sum) != "## Push\n\n" {
		t.Fatalf("summary %q", sum)
	}

	// No GITHUB_OUTPUT (a local run): a warning, not a panic.
	stdout.Reset()
	b := NewActions(&stdout, func(string) string { return "" }, &Redactor{})
	if err := b.SetOutputs([]Output{{Name: "digest", Value: "x"}}); err != nil || !strings.Contains(stdout.String(), "GITHUB_OUTPUT is not set") {
		t.Fatalf("missing GITHUB_OUTPUT: %v %q", err, stdout.String())
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 256 << 20: "256.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestRedactorHidesEncodedForms: a secret quoted inside base64 data (a
// basic-auth header, a docker config) is hidden too, at any offset.
func TestRedactorHidesEncodedForms(t *testing.T) {
	const secret = "canary/secret+value=42"
	r := &Redactor{}
	r.Add(secret)
	for _, prefix := range []string{"", "u:", "us:", "user:"} {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding} {
			encoded := enc.EncodeToString([]byte(prefix + secret + ":tail"))
			got := r.Redact("Authorization: Basic " + encoded)
			for _, form := range []string{secret, encoded} {
				if strings.Contains(got, form) {
					t.Errorf("prefix %q: %q survived in %q", prefix, form, got)
				}
			}
			if !strings.Contains(got, "***") {
				t.Errorf("prefix %q: nothing redacted in %q", prefix, got)
			}
			// What decodes from what is left must not hold the secret.
			rest := strings.TrimPrefix(got, "Authorization: Basic ")
			for _, part := range strings.Split(rest, "***") {
				if dec, err := enc.DecodeString(part); err == nil && strings.Contains(string(dec), secret) {
					t.Errorf("prefix %q: %q still decodes to the secret", prefix, part)
				}
			}
		}
	}
	if r.Redact("an ordinary line") != "an ordinary line" {
		t.Error("ordinary text must pass")
	}
}
