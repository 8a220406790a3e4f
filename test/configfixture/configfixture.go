// Package configfixture writes repositories of configuration files with
// known misconfigurations — Dockerfiles, Kubernetes manifests, a Helm chart,
// Terraform, CloudFormation and Compose files — for configuration scanning
// tests and benchmarks.
package configfixture

import (
	"fmt"
	"os"
	"path/filepath"
)

// Files of the small fixture, relative to its root, and what Trivy's
// embedded checks find in them (line numbers are Trivy's).
const (
	Dockerfile = "Dockerfile"
	Deployment = "deploy/k8s/deployment.yaml"
	Terraform  = "infra/main.tf"
	CFN        = "infra/cloudformation.yaml"
	Compose    = "compose.yaml"
	Chart      = "charts/web"
	// Clean is a Dockerfile no check fails on.
	Clean = "tools/clean.Dockerfile"
)

// dockerfile runs as root (DS-0002, no line: no USER instruction), uses
// :latest (DS-0001, line 1) and installs with apt-get without
// --no-install-recommends (DS-0029, line 2).
const dockerfile = `FROM alpine:latest
RUN apt-get update && apt-get install -y curl
COPY . /app
CMD ["/app/run"]
`

const cleanDockerfile = `FROM alpine:3.20@sha256:0a4eaa0eecf5f8c050e5bba433f58c052be7587ee8af3e8b3910ef9ab5fbe9f5
RUN adduser -D app
USER app
HEALTHCHECK CMD ["true"]
CMD ["/bin/true"]
`

// deployment is a privileged container without limits, on its own lines.
const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: nginx:1.25
          securityContext:
            privileged: true
`

// terraform is an S3 bucket with a public ACL.
const terraform = `resource "aws_s3_bucket" "data" {
  bucket = "acme-data"
}

resource "aws_s3_bucket_acl" "data" {
  bucket = aws_s3_bucket.data.id
  acl    = "public-read"
}
`

const cloudformation = `AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Data:
    Type: AWS::S3::Bucket
    Properties:
      AccessControl: PublicRead
`

// compose has no checks in Trivy: it is scanned and stays clean.
const compose = `services:
  web:
    image: nginx:latest
    privileged: true
`

const chartYAML = `apiVersion: v2
name: web
version: 0.1.0
`

const chartValues = `image: nginx:1.25
`

const chartDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      hostNetwork: true
      containers:
        - name: web
          image: {{ .Values.image }}
`

// Small writes one file of each kind into dir.
func Small(dir string) error {
	files := map[string]string{
		Dockerfile:                           dockerfile,
		Clean:                                cleanDockerfile,
		Deployment:                           deployment,
		Terraform:                            terraform,
		CFN:                                  cloudformation,
		Compose:                              compose,
		Chart + "/Chart.yaml":                chartYAML,
		Chart + "/values.yaml":               chartValues,
		Chart + "/templates/deployment.yaml": chartDeployment,
		"README.md":                          "# not configuration\n",
	}
	for name, content := range files {
		if err := write(dir, name, content); err != nil {
			return err
		}
	}
	return nil
}

// Mixed writes n configuration files into dir, cycling through the kinds:
// Dockerfiles, Kubernetes manifests, Terraform, CloudFormation and Compose
// files in their own directories, and one Helm chart per 50 files (three
// files each).
func Mixed(dir string, n int) error {
	for i := 0; i < n; i++ {
		var name, content string
		switch i % 10 {
		case 0, 1:
			name, content = fmt.Sprintf("services/svc%03d/Dockerfile", i), dockerfile
		case 2, 3, 4:
			name, content = fmt.Sprintf("deploy/k8s/app%03d.yaml", i), deployment
		case 5, 6:
			name, content = fmt.Sprintf("infra/mod%03d/main.tf", i), terraform
		case 7:
			name, content = fmt.Sprintf("infra/cfn/stack%03d.yaml", i), cloudformation
		case 8:
			name, content = fmt.Sprintf("services/svc%03d/compose.yaml", i), compose
		case 9:
			if i%50 == 9 && i+2 < n {
				base := fmt.Sprintf("charts/chart%03d", i)
				for sub, c := range map[string]string{"Chart.yaml": chartYAML, "values.yaml": chartValues, "templates/deployment.yaml": chartDeployment} {
					if err := write(dir, base+"/"+sub, c); err != nil {
						return err
					}
				}
				i += 2
				continue
			}
			name, content = fmt.Sprintf("services/svc%03d/worker.Dockerfile", i), dockerfile
		}
		if err := write(dir, name, content); err != nil {
			return err
		}
	}
	return nil
}

func write(dir, name, content string) error {
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o644)
}
