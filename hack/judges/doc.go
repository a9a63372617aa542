// Package judges exists only so `go mod tidy` keeps the judges' dependencies; see build.sh.
// The judges are the ecosystem's own libraries run on this project's artefacts:
// argocd-health (Argo CD's util/lua) and kstatus (sigs.k8s.io/cli-utils, as Flux uses it).
package judges
