// Package dist tests the artifacts of `make dist` (SPEC §13): the OCI image
// layout and the offline kit. Its tests carry the build tag "dist" and run
// from `make dist-test` (test/dist/run.sh), which builds dist/ first and
// points SIGNER_AGENT_DIST at it; they fail, naming what is missing, when
// the artifacts are not there. The .deb lifecycle (install, upgrade,
// remove, purge) is test/dist/deb.sh, run by the same target.
//
// Two tests need no artifacts and run in plain `go test`: the Kubernetes
// manifests (their config loads with the agent's loader) and
// packaging/dist/version.sh (git describe to a Debian version).
package dist
