// Package keystate keeps the key changes made through the admin API:
// revocations (a watched YAML list that operators may also edit) and
// rotations (laid over the configuration at every load, so the operator's
// YAML is never rewritten). Both files are written with
// fsutil.WriteFileAtomic: once a change is acknowledged (and audited), a
// crash or power loss cannot undo it.
package keystate
