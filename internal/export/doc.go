// Package export builds what the agent signs for an Export Center export
// (SPEC §4.4): the manifest export.json and an in-toto Statement carrying
// SLSA provenance v1 over export.json and every file of the export.
//
// Both are RFC 8785 canonical JSON and depend only on the request and the
// agent's installation identity: the same export gives byte-identical
// manifest and statement on any node of the installation, at any time (the
// agent puts no clock into either; createdAt comes from the caller).
//
// The package also checks signed exports offline (ParseManifest,
// CheckProvenance) for signerctl verify export.
package export
