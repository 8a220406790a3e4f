// Package oidc names the identity provider of keyless signatures made in
// GitHub Actions, shared by the signer, the verify input's default and the
// test stand-ins.
package oidc

// GitHubActionsIssuer is the issuer of the tokens GitHub Actions gives a
// workflow with id-token: write.
const GitHubActionsIssuer = "https://token.actions.githubusercontent.com"
