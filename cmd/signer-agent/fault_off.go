//go:build !faultinject

package main

// faultHook is nil in every normal build: the agent has no fault hook.
// (fault_on.go, built only with -tags faultinject, is the crash tests'.)
func faultHook() func(route string) { return nil }
