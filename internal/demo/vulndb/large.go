package vulndb

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// LargeOptions size LargeIndex.
type LargeOptions struct {
	// OSPackages are added to each platform's package database beside the
	// fixture packages.
	OSPackages int
	// NpmPackages are added to the shared npm layer, each with some source.
	NpmPackages int
	// SharedBytes of assets in a layer both platforms share; PlatformBytes
	// of libraries and executables in a layer of each platform.
	SharedBytes   int
	PlatformBytes int
}

// DefaultLargeOptions give images of about 50 MB per platform with hundreds
// of packages, the shape of a typical application image.
var DefaultLargeOptions = LargeOptions{OSPackages: 400, NpmPackages: 600, SharedBytes: 16 << 20, PlatformBytes: 24 << 20}

// LargeIndex is Index grown to a realistic size: the same fixture packages
// (so a scan finds exactly Expected) among many packages without
// advisories, and megabytes of libraries, executables and assets for the
// scanner to walk. Layers shared by the platforms are byte-identical. The
// content is deterministic.
func LargeIndex(o LargeOptions) (v1.ImageIndex, error) {
	npm, err := largeNpmLayer(o.NpmPackages)
	if err != nil {
		return nil, fmt.Errorf("build large index: %w", err)
	}
	assets, err := fillerLayer("usr/share/app/assets", "asset-%04d.bin", o.SharedBytes, 0o644, 1)
	if err != nil {
		return nil, fmt.Errorf("build large index: %w", err)
	}
	alpineOS, err := largeAlpineLayer(o.OSPackages)
	if err != nil {
		return nil, fmt.Errorf("build large index: %w", err)
	}
	debianOS, err := largeDebianLayer(o.OSPackages)
	if err != nil {
		return nil, fmt.Errorf("build large index: %w", err)
	}
	alpineLibs, err := fillerLayer("usr/lib/x86_64", "libbench-%04d.so", o.PlatformBytes, 0o755, 2)
	if err != nil {
		return nil, fmt.Errorf("build large index: %w", err)
	}
	debianLibs, err := fillerLayer("usr/lib/aarch64-linux-gnu", "libbench-%04d.so", o.PlatformBytes, 0o755, 3)
	if err != nil {
		return nil, fmt.Errorf("build large index: %w", err)
	}
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	alpine, err := image(amd64, npm, assets, alpineOS, alpineLibs)
	if err != nil {
		return nil, fmt.Errorf("build large index: %w", err)
	}
	debian, err := image(arm64, npm, assets, debianOS, debianLibs)
	if err != nil {
		return nil, fmt.Errorf("build large index: %w", err)
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	return mutate.AppendManifests(idx,
		mutate.IndexAddendum{Add: alpine, Descriptor: v1.Descriptor{Platform: &amd64}},
		mutate.IndexAddendum{Add: debian, Descriptor: v1.Descriptor{Platform: &arm64}},
	), nil
}

func syntheticPackages(n int, version func(i int) string) []Package {
	out := make([]Package, n)
	for i := range out {
		out[i] = Package{Name: fmt.Sprintf("bench-lib%04d", i), Version: version(i)}
	}
	return out
}

func largeAlpineLayer(extra int) (v1.Layer, error) {
	pkgs := append(append([]Package{}, AlpinePackages...), syntheticPackages(extra, func(i int) string { return fmt.Sprintf("1.%d.%d-r0", i/10, i%10) })...)
	var apk strings.Builder
	for _, p := range pkgs {
		fmt.Fprintf(&apk, "C:Q1%s=\nP:%s\nV:%s\nA:x86_64\nL:MIT\no:%s\n", strings.Repeat("A", 27), p.Name, p.Version, p.source())
		// apk lists every file a package owns; real databases are mostly this.
		for f := range 8 {
			fmt.Fprintf(&apk, "F:usr/lib/%s\nR:file%d.so\n", p.Name, f)
		}
		apk.WriteString("\n")
	}
	return layer([]file{
		{path: "etc/alpine-release", content: AlpineRelease + "\n"},
		{path: "etc/os-release", content: fmt.Sprintf("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=%s\nPRETTY_NAME=\"Alpine Linux v%s\"\n", AlpineRelease, alpineStream)},
		{path: "lib/apk/db/installed", content: apk.String()},
	})
}

func largeDebianLayer(extra int) (v1.Layer, error) {
	pkgs := append(append([]Package{}, DebianPackages...), syntheticPackages(extra, func(i int) string { return fmt.Sprintf("1.%d.%d-1", i/10, i%10) })...)
	var status strings.Builder
	for _, p := range pkgs {
		fmt.Fprintf(&status, "Package: %s\nStatus: install ok installed\nPriority: optional\nArchitecture: arm64\n", p.Name)
		if p.Source != "" {
			fmt.Fprintf(&status, "Source: %s\n", p.Source)
		}
		fmt.Fprintf(&status, "Version: %s\nMaintainer: Debian fixture <fixture@example.invalid>\nInstalled-Size: 1024\nDescription: %s package\n A longer description of the %s package, as dpkg keeps it.\n\n", p.Version, p.Name, p.Name)
	}
	return layer([]file{
		{path: "etc/debian_version", content: DebianRelease + "\n"},
		{path: "etc/os-release", content: "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n"},
		{path: "var/lib/dpkg/status", content: status.String()},
	})
}

func largeNpmLayer(extra int) (v1.Layer, error) {
	pkgs := append(append([]Package{}, NpmPackages...), syntheticPackages(extra, func(i int) string { return fmt.Sprintf("2.%d.%d", i/10, i%10) })...)
	rng := rand.New(rand.NewPCG(4, 4))
	var files []file
	for _, p := range pkgs {
		manifest, err := json.MarshalIndent(map[string]string{"name": p.Name, "version": p.Version, "license": "MIT", "main": "index.js"}, "", "  ")
		if err != nil {
			return nil, err
		}
		files = append(files,
			file{path: NpmPackagePath(p.Name), content: string(manifest) + "\n"},
			file{path: NodeModulesDir + "/" + p.Name + "/index.js", content: source(rng, 6<<10)})
	}
	return layer(files)
}

// fillerLayer writes about size bytes in files of 256 KiB to 1 MiB: half
// random (compiled code compresses poorly), half text.
func fillerLayer(dir, pattern string, size int, mode int64, seed uint64) (v1.Layer, error) {
	rng := rand.New(rand.NewPCG(seed, seed))
	var files []file
	for i, written := 0, 0; written < size; i++ {
		n := min(size-written, 256<<10+rng.IntN(768<<10))
		data := make([]byte, n)
		half := n / 2
		for j := 0; j < half; j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && j+k < half; k++ {
				data[j+k] = byte(v >> (8 * k))
			}
		}
		copy(data[half:], source(rng, n-half))
		files = append(files, file{path: dir + "/" + fmt.Sprintf(pattern, i), content: string(data), mode: mode})
		written += n
	}
	return layer(files)
}

// source is n bytes of JavaScript-looking text.
func source(rng *rand.Rand, n int) string {
	words := []string{"function", "return", "const", "value", "options", "callback", "module", "exports", "require", "length", "this", "null", "if", "else", "for"}
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(words[rng.IntN(len(words))])
		if rng.IntN(8) == 0 {
			b.WriteString(";\n")
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String()[:n]
}
