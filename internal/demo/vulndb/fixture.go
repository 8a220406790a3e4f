// Package vulndb builds a small, real Trivy vulnerability database and
// synthetic container images whose filesystems carry the vulnerable packages it
// describes. Tests use it to assert exact scan results without network access,
// and the demo command uses it to scan its sample image offline.
//
// Every vulnerability ID in the fixture is fictional (CVE-2099-*): the data
// exercises the scanner, it says nothing about real software.
package vulndb

import (
	"slices"
)

// Platforms of the sample index, in index order.
const (
	PlatformAlpine = "linux/amd64"
	PlatformDebian = "linux/arm64/v8"
)

// OS releases the fixture images declare and the DB has advisories for.
const (
	AlpineRelease = "3.23.2"
	DebianRelease = "12.11"

	alpineStream = "3.23" // Trivy looks Alpine advisories up by major.minor
	debianStream = "12"   // and Debian advisories by major version
)

// NodeModulesDir is where the shared layer installs its npm packages.
const NodeModulesDir = "app/node_modules"

// Package is a package installed in a fixture image.
type Package struct {
	Name    string
	Version string
	// Source is the source package (apk origin, dpkg Source); empty means Name.
	Source string
	// Arch is the package architecture recorded in the package database.
	Arch string
}

func (p Package) source() string {
	if p.Source != "" {
		return p.Source
	}
	return p.Name
}

// Ecosystem names the kind of package an advisory applies to.
type Ecosystem string

const (
	Alpine Ecosystem = "alpine"
	Debian Ecosystem = "debian"
	Npm    Ecosystem = "npm"
)

// Advisory is one vulnerability record for one (source) package.
type Advisory struct {
	ID        string
	Ecosystem Ecosystem
	// Package is the source package for OS ecosystems, the npm package name otherwise.
	Package string
	// FixedVersion applies to OS ecosystems; empty means no fix is available.
	FixedVersion string
	// Vulnerable and Patched are npm version ranges.
	Vulnerable []string
	Patched    []string
	// Status is the vendor status of an unfixed OS advisory ("affected", "will_not_fix").
	Status string
}

// Vulnerability holds the details shared by every advisory with the same ID.
type Vulnerability struct {
	ID          string
	Title       string
	Description string
	// Severity is the vendor severity Trivy selects for this vulnerability;
	// empty leaves it UNKNOWN.
	Severity string
	// SeveritySource is where the severity is recorded: "nvd", "debian" or "ghsa".
	SeveritySource string
	CVSSv3Vector   string
	CVSSv3Score    float64
}

// Layer contents. Versions are chosen so that each advisory either matches
// exactly one installed version or none (the negative controls).
var (
	AlpinePackages = []Package{
		{Name: "alpine-baselayout", Version: "3.7.0-r0"},
		{Name: "musl", Version: "1.2.5-r10"},
		{Name: "busybox", Version: "1.37.0-r18"},
		{Name: "ssl_client", Version: "1.37.0-r18", Source: "busybox"},
		{Name: "libcrypto3", Version: "3.5.1-r0", Source: "openssl"},
		{Name: "zlib", Version: "1.3.1-r2"},
	}
	DebianPackages = []Package{
		{Name: "base-files", Version: "12.4+deb12u11"},
		{Name: "libssl3", Version: "3.0.16-1~deb12u1", Source: "openssl"},
		{Name: "libc6", Version: "2.36-9+deb12u10", Source: "glibc"},
		{Name: "bash", Version: "5.2.15-2+b8"},
		{Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Source: "zlib"},
		{Name: "tar", Version: "1.34+dfsg-1.2+deb12u1"},
	}
	NpmPackages = []Package{
		{Name: "lodash", Version: "4.17.20"},
		{Name: "minimist", Version: "1.2.5"},
		{Name: "left-pad", Version: "1.3.0"},
		{Name: "express", Version: "4.21.2"},
	}
)

// Advisories in the fixture DB, including negative controls that must not match.
var Advisories = []Advisory{
	{ID: "CVE-2099-0001", Ecosystem: Alpine, Package: "musl", FixedVersion: "1.2.5-r11"},
	{ID: "CVE-2099-0002", Ecosystem: Alpine, Package: "busybox", FixedVersion: "1.37.0-r19"},
	{ID: "CVE-2099-0003", Ecosystem: Alpine, Package: "zlib", FixedVersion: "1.3.1-r3"},
	{ID: "CVE-2099-0004", Ecosystem: Alpine, Package: "openssl", FixedVersion: "3.5.2-r0"},
	// Negative control: fixed before the installed musl.
	{ID: "CVE-2099-0006", Ecosystem: Alpine, Package: "musl", FixedVersion: "1.2.5-r1"},

	{ID: "CVE-2099-0101", Ecosystem: Debian, Package: "openssl", FixedVersion: "3.0.17-1~deb12u1"},
	{ID: "CVE-2099-0102", Ecosystem: Debian, Package: "glibc", FixedVersion: "2.36-9+deb12u11"},
	{ID: "CVE-2099-0103", Ecosystem: Debian, Package: "bash", Status: "affected"},
	{ID: "CVE-2099-0003", Ecosystem: Debian, Package: "zlib", Status: "will_not_fix"},
	{ID: "CVE-2099-0104", Ecosystem: Debian, Package: "tar", FixedVersion: "1.34+dfsg-1.2+deb12u2"},
	// Negative control: fixed before the installed glibc.
	{ID: "CVE-2099-0105", Ecosystem: Debian, Package: "glibc", FixedVersion: "2.36-9+deb12u4"},

	{ID: "CVE-2099-1001", Ecosystem: Npm, Package: "lodash", Vulnerable: []string{"<4.17.21"}, Patched: []string{"4.17.21"}},
	{ID: "CVE-2099-1002", Ecosystem: Npm, Package: "minimist", Vulnerable: []string{"<1.2.6"}, Patched: []string{"1.2.6"}},
	{ID: "CVE-2099-1003", Ecosystem: Npm, Package: "left-pad", Vulnerable: []string{">=0.0.1"}},
	// Negative control: only old express releases are affected.
	{ID: "CVE-2099-1004", Ecosystem: Npm, Package: "express", Vulnerable: []string{"<4.0.0"}, Patched: []string{"4.0.0"}},
}

// Vulnerabilities holds the details of every advisory ID.
var Vulnerabilities = []Vulnerability{
	{ID: "CVE-2099-0001", Title: "musl: heap overflow in iconv", Severity: "CRITICAL", SeveritySource: "nvd",
		CVSSv3Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", CVSSv3Score: 9.8},
	{ID: "CVE-2099-0002", Title: "busybox: command injection in wget", Severity: "HIGH", SeveritySource: "nvd",
		CVSSv3Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", CVSSv3Score: 8.8},
	{ID: "CVE-2099-0003", Title: "zlib: out-of-bounds read in inflate", Severity: "LOW", SeveritySource: "nvd",
		CVSSv3Vector: "CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:L/I:N/A:N", CVSSv3Score: 2.5},
	{ID: "CVE-2099-0004", Title: "openssl: timing side channel in RSA decryption", Severity: "MEDIUM", SeveritySource: "nvd",
		CVSSv3Vector: "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", CVSSv3Score: 5.9},
	{ID: "CVE-2099-0006", Title: "musl: old fixed bug", Severity: "HIGH", SeveritySource: "nvd"},
	{ID: "CVE-2099-0101", Title: "openssl: buffer overread in X.509 name checks", Severity: "CRITICAL", SeveritySource: "debian",
		CVSSv3Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", CVSSv3Score: 9.8},
	{ID: "CVE-2099-0102", Title: "glibc: stack overflow in getaddrinfo", Severity: "HIGH", SeveritySource: "debian"},
	{ID: "CVE-2099-0103", Title: "bash: privilege escalation via crafted environment", Severity: "MEDIUM", SeveritySource: "debian"},
	{ID: "CVE-2099-0104", Title: "tar: path traversal on extraction"},
	{ID: "CVE-2099-0105", Title: "glibc: old fixed bug", Severity: "CRITICAL", SeveritySource: "debian"},
	{ID: "CVE-2099-1001", Title: "lodash: prototype pollution in zipObjectDeep", Severity: "HIGH", SeveritySource: "ghsa",
		CVSSv3Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:H", CVSSv3Score: 7.4},
	{ID: "CVE-2099-1002", Title: "minimist: prototype pollution", Severity: "MEDIUM", SeveritySource: "ghsa"},
	{ID: "CVE-2099-1003", Title: "left-pad: denial of service on huge padding", Severity: "LOW", SeveritySource: "ghsa"},
	{ID: "CVE-2099-1004", Title: "express: old fixed bug", Severity: "HIGH", SeveritySource: "ghsa"},
}

// ExpectedFinding is one vulnerability × package a scan of the sample index
// must report, with every platform it affects.
type ExpectedFinding struct {
	VulnerabilityID  string
	Severity         string
	PkgName          string
	PkgType          string // Trivy's target type: "alpine", "debian", "node-pkg"
	InstalledVersion string
	FixedVersion     string
	Status           string
	Platforms        []string
}

// Expected lists the findings of a scan of Index with no filters, ordered by
// vulnerability ID then package name. It is written out by hand rather than
// derived from Advisories so that a matching bug cannot hide in both.
var Expected = []ExpectedFinding{
	{"CVE-2099-0001", "CRITICAL", "musl", "alpine", "1.2.5-r10", "1.2.5-r11", "fixed", []string{PlatformAlpine}},
	{"CVE-2099-0002", "HIGH", "busybox", "alpine", "1.37.0-r18", "1.37.0-r19", "fixed", []string{PlatformAlpine}},
	{"CVE-2099-0002", "HIGH", "ssl_client", "alpine", "1.37.0-r18", "1.37.0-r19", "fixed", []string{PlatformAlpine}},
	{"CVE-2099-0003", "LOW", "zlib", "alpine", "1.3.1-r2", "1.3.1-r3", "fixed", []string{PlatformAlpine}},
	{"CVE-2099-0003", "LOW", "zlib1g", "debian", "1:1.2.13.dfsg-1", "", "will_not_fix", []string{PlatformDebian}},
	{"CVE-2099-0004", "MEDIUM", "libcrypto3", "alpine", "3.5.1-r0", "3.5.2-r0", "fixed", []string{PlatformAlpine}},
	{"CVE-2099-0101", "CRITICAL", "libssl3", "debian", "3.0.16-1~deb12u1", "3.0.17-1~deb12u1", "fixed", []string{PlatformDebian}},
	{"CVE-2099-0102", "HIGH", "libc6", "debian", "2.36-9+deb12u10", "2.36-9+deb12u11", "fixed", []string{PlatformDebian}},
	{"CVE-2099-0103", "MEDIUM", "bash", "debian", "5.2.15-2+b8", "", "affected", []string{PlatformDebian}},
	{"CVE-2099-0104", "UNKNOWN", "tar", "debian", "1.34+dfsg-1.2+deb12u1", "1.34+dfsg-1.2+deb12u2", "fixed", []string{PlatformDebian}},
	{"CVE-2099-1001", "HIGH", "lodash", "node-pkg", "4.17.20", "4.17.21", "fixed", []string{PlatformAlpine, PlatformDebian}},
	{"CVE-2099-1002", "MEDIUM", "minimist", "node-pkg", "1.2.5", "1.2.6", "fixed", []string{PlatformAlpine, PlatformDebian}},
	{"CVE-2099-1003", "LOW", "left-pad", "node-pkg", "1.3.0", "", "affected", []string{PlatformAlpine, PlatformDebian}},
}

// ExpectedFor returns the expected findings that affect platform, in the order of Expected.
func ExpectedFor(platform string) []ExpectedFinding {
	var out []ExpectedFinding
	for _, f := range Expected {
		if slices.Contains(f.Platforms, platform) {
			out = append(out, f)
		}
	}
	return out
}

// NpmPackagePath is where the shared layer stores the manifest of an npm package,
// which Trivy reports as the package path.
func NpmPackagePath(name string) string {
	return NodeModulesDir + "/" + name + "/package.json"
}
