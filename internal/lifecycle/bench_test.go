package lifecycle

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchPolicy has ten rules mixing prefixes, patterns with inner wildcards,
// multi-entry lists, counts and ages, and an "any" rule last.
const benchPolicy = `{"rules": [
 {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPatternList": ["latest"], "countType": "imageCountMoreThan", "countNumber": 1000000}, "action": {"type": "expire"}},
 {"rulePriority": 2, "selection": {"tagStatus": "tagged", "tagPatternList": ["v*.*.*"], "countType": "imageCountMoreThan", "countNumber": 200}, "action": {"type": "expire"}},
 {"rulePriority": 3, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7}, "action": {"type": "expire"}},
 {"rulePriority": 4, "selection": {"tagStatus": "tagged", "tagPrefixList": ["prod-"], "countType": "imageCountMoreThan", "countNumber": 50}, "action": {"type": "expire"}},
 {"rulePriority": 5, "selection": {"tagStatus": "tagged", "tagPrefixList": ["beta-", "sha-"], "countType": "imageCountMoreThan", "countNumber": 20}, "action": {"type": "expire"}},
 {"rulePriority": 6, "selection": {"tagStatus": "tagged", "tagPatternList": ["pr-*-*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14}, "action": {"type": "expire"}},
 {"rulePriority": 7, "selection": {"tagStatus": "tagged", "tagPatternList": ["*-rc*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30}, "action": {"type": "expire"}},
 {"rulePriority": 8, "selection": {"tagStatus": "tagged", "tagPatternList": ["sha-*"], "countType": "imageCountMoreThan", "countNumber": 500}, "action": {"type": "expire"}},
 {"rulePriority": 9, "selection": {"tagStatus": "tagged", "tagPatternList": ["*e*e*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 90}, "action": {"type": "expire"}},
 {"rulePriority": 10, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5000}, "action": {"type": "expire"}}
]}`

// benchInventory is a repository of n top-level images, a fifth of them
// multi-arch indexes with two platform manifests and a cosign signature.
func benchInventory(n int) []Artifact {
	rng := rand.New(rand.NewPCG(42, 42))
	inv := make([]Artifact, 0, n+n/5*3)
	kinds := []string{"prod-%d", "beta-%d", "sha-%x", "pr-%d-build", "v1.%d.0", "release-%d-rc1", "feature-%d"}
	for i := 0; i < n; i++ {
		a := Artifact{
			Digest:   digestOf(fmt.Sprintf("bench-%d", i)),
			PushedAt: testNow.Add(-time.Duration(rng.IntN(400*24)) * time.Hour),
			Size:     int64(1 + rng.IntN(1<<20)),
		}
		for k := rng.IntN(3); k > 0; k-- {
			a.Tags = append(a.Tags, fmt.Sprintf(kinds[rng.IntN(len(kinds))], i))
		}
		if i == 0 {
			a.Tags = append(a.Tags, "latest")
		}
		if i%5 == 0 {
			amd, arm := digestOf(fmt.Sprintf("bench-%d-amd64", i)), digestOf(fmt.Sprintf("bench-%d-arm64", i))
			a.Children = []string{amd, arm}
			inv = append(inv,
				Artifact{Digest: amd, PushedAt: a.PushedAt},
				Artifact{Digest: arm, PushedAt: a.PushedAt},
				Artifact{Digest: digestOf(fmt.Sprintf("bench-%d-sig", i)), PushedAt: a.PushedAt,
					Tags: []string{strings.Replace(a.Digest, ":", "-", 1) + ".sig"}, AttachedTo: a.Digest})
		}
		inv = append(inv, a)
	}
	return inv
}

// BenchmarkEvaluate: a 10-rule policy over 100,000 images (160,000
// artifacts with children and signatures). Run on one core:
//
//	go test -run x -bench . -cpu 1 ./internal/lifecycle/
func BenchmarkEvaluate(b *testing.B) {
	p := mustParse(b, benchPolicy)
	inv := benchInventory(100_000)
	opts := EvalOptions{Now: testNow, Protected: []string{inv[len(inv)-1].Digest}}
	plan := mustEvaluate(b, p, inv, opts)
	if plan.Counts.Candidates != 100_000 || len(plan.Expired) == 0 {
		b.Fatalf("unexpected benchmark repository: %+v", plan.Counts)
	}
	// Wall time suffers when other processes share the machine; the CPU
	// time the process spent is reported too.
	cpu0 := processCPU()
	for b.Loop() {
		if _, err := Evaluate(p, inv, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(len(plan.Expired)), "expired/op")
}

// processCPU is the user and system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkParseValidate(b *testing.B) {
	data := []byte(benchPolicy)
	caps, _ := CapabilitiesFor(RegistryECR)
	for b.Loop() {
		p, err := Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Validate(caps); err != nil {
			b.Fatal(err)
		}
	}
}
