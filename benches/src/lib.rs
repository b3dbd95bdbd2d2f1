//! Shared helpers for Ember's benchmarks and the `peak` probe.
