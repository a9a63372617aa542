// Package kubebins exists only so `go mod tidy` keeps the tool dependencies; see build.sh.
package kubebins
