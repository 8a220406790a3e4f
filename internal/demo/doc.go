// Package demo is the room for what `registry demo` needs besides the
// program itself: a sample multi-arch image with known vulnerable packages
// (synth, vulndb), an offline vulnerability database (vulndb), a repository
// history to clean (cleanfixture) and an in-process registry on loopback
// (localregistry). The tests and benchmarks use the same fixtures. Nothing
// here is used by the production engines.
package demo
